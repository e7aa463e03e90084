"""``narrow_scope``: what narrowing may produce (never more than was granted), and that it
remembers its common answers, never its refusals, and never long scopes."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749.errors import InvalidScopeError

from oauth.grants import REMEMBERED_SCOPES_LENGTH, _remembered_narrowing, narrow_scope
from oauth.scopes import covers, parse_scopes

GRANTED = "system/Patient.rs system/Observation.rs"


def test_a_scope_within_the_grant_is_narrowed_and_remembered():
    _remembered_narrowing.cache_clear()
    assert narrow_scope(GRANTED, "system/Patient.rs system/Patient.rs") == "system/Patient.rs"
    assert narrow_scope(GRANTED, "system/Patient.rs system/Patient.rs") == "system/Patient.rs"
    assert _remembered_narrowing.cache_info().hits == 1
    assert narrow_scope(GRANTED, None) == GRANTED


@pytest.mark.parametrize("requested", ["system/Condition.rs", "system/Patient.cruds", " ", "openid"])
def test_a_refusal_is_raised_every_time(requested):
    for _ in range(2):
        with pytest.raises(InvalidScopeError):
            narrow_scope(GRANTED, requested)


def test_a_long_scope_is_narrowed_without_being_remembered():
    _remembered_narrowing.cache_clear()
    requested = " ".join(["system/Observation.rs"] * (REMEMBERED_SCOPES_LENGTH // 10))
    assert narrow_scope(GRANTED, requested) == "system/Observation.rs"
    assert _remembered_narrowing.cache_info().currsize == 0


# What narrowing may and may not produce (SMART App Launch 2.x scopes; the token endpoint's
# check and every request's re-check of a token's scopes both use ``covers``).
COVERED = [
    ("system/*.rs", "system/Patient.rs"),
    ("system/*.read", "system/Observation.rs"),
    ("system/*.read", "system/Observation.s"),
    ("system/*.*", "system/Observation.cud"),
    ("system/*.write system/*.read", "system/Observation.cruds"),
    ("system/AuditEvent.rs", "system/AuditEvent.r"),
    ("system/AuditEvent.read", "system/AuditEvent.rs?outcome=0"),
    ("system/AuditEvent.r system/AuditEvent.s", "system/AuditEvent.rs"),
    ("patient/*.rs", "patient/Observation.rs"),
    # Restrictions: the granted pairs, ANDed with more filters on the type's own elements.
    ("system/Observation.rs?category=laboratory", "system/Observation.rs?category=laboratory"),
    ("system/Observation.rs?category=laboratory", "system/Observation.rs?category=laborator%79"),
    ("system/Observation.rs?category=laboratory", "system/Observation.rs?code=x&category=laboratory"),
    ("system/Observation.rs?category=laboratory", "system/Observation.rs?category=laboratory&code:not=x"),
    (
        "system/Observation.rs?category=laboratory",
        "system/Observation.rs?category=laboratory&code:missing=false",
    ),
    ("system/Observation.rs?category=laboratory", "system/Observation.rs?category=laboratory&category=a,b"),
    ("system/Observation.rs?category=laboratory", "system/Observation.rs?category=laboratory&_id=o1"),
    (
        "system/Observation.rs?category=laboratory",
        "system/Observation.rs?category=laboratory&_lastUpdated=gt2020",
    ),
    ("system/Observation.rs", "system/Observation.rs?subject=Patient/p1"),
    (
        "system/Observation.r?category=lab system/Observation.s?code=x",
        "system/Observation.rs?category=lab&code=x",
    ),
]
NOT_COVERED = [
    # A wildcard never reaches the audit trail, in any context and by any permission.
    ("system/*.rs", "system/AuditEvent.rs"),
    ("system/*.rs", "system/AuditEvent.s"),
    ("system/*.*", "system/AuditEvent.r"),
    ("system/*.read", "system/AuditEvent.read"),
    ("system/*.rs", "system/AuditEvent.rs?outcome=0"),
    ("system/*.rs?outcome=0", "system/AuditEvent.rs?outcome=0"),
    ("patient/*.rs", "patient/AuditEvent.rs"),
    ("system/AuditEvent.s system/*.rs", "system/AuditEvent.rs"),  # r only through the wildcard
    # Contexts do not mix.
    ("patient/*.rs", "system/Observation.rs"),
    ("patient/*.rs", "user/Observation.rs"),
    ("system/*.rs", "patient/Observation.rs"),
    ("system/Observation.read", "system/Observation.rus"),
    ("system/Observation.rs", "system/*.rs"),
    # A restriction cannot be dropped, widened by an OR or respelled into another one.
    ("system/Observation.rs?category=laboratory", "system/Observation.rs"),
    ("system/Observation.rs?category=laboratory", "system/Observation.rs?category=laboratory,vital-signs"),
    ("system/Observation.rs?category=laboratory", "system/Observation.rs?category:not=vital-signs"),
    ("system/Observation.rs?category=laboratory", "system/Observation.rs?category%3Dlaboratory=x"),
    ("system/Observation.rs?category=laboratory", "system/Observation.rs?category=laboratory%2Cvital-signs"),
    ("system/Observation.rs?category=a&category=b", "system/Observation.rs?category=a"),
    # Nor can it add what is no filter on the type's own elements: a chain searches another
    # type (an oracle on what the token may not see), the rest filters nothing.
    (
        "system/Observation.rs?category=laboratory",
        "system/Observation.rs?category=laboratory&subject:Patient.name=x",
    ),
    ("system/Observation.rs", "system/Observation.rs?subject.name=x"),
    ("system/Observation.rs", "system/Observation.rs?subject%3APatient%2Ename=x"),
    ("system/Patient.rs", "system/Patient.rs?_has:Observation:patient:code=x"),
    ("system/Patient.rs", "system/Patient.rs?%5Fhas:Observation:patient:code=x"),
]
NOT_FILTERS = [
    "_count=5",
    "_include=Observation:subject",
    "_revinclude=Provenance:target",
    "_elements=id",
    "_sort=date",
    "_summary=count",
    "_total=none",
    "_cursor=x",
    "_format=json",
    "%5Fcount=5",
]


@pytest.mark.parametrize("granted,requested", COVERED)
def test_narrowing_within_the_grant_is_allowed(granted, requested):
    assert all(covers(parse_scopes(granted), scope) for scope in parse_scopes(requested))
    assert narrow_scope(granted, requested) == requested


@pytest.mark.parametrize("granted,requested", NOT_COVERED)
def test_narrowing_beyond_the_grant_is_refused(granted, requested):
    assert not all(covers(parse_scopes(granted), scope) for scope in parse_scopes(requested))
    with pytest.raises(InvalidScopeError):
        narrow_scope(granted, requested)


@pytest.mark.parametrize("extra", NOT_FILTERS)
def test_a_restriction_cannot_carry_parameters_that_filter_nothing(extra):
    for granted in ("system/Observation.rs", "system/Observation.rs?category=laboratory"):
        base = granted if "?" in granted else granted + "?category=laboratory"
        with pytest.raises(InvalidScopeError):
            narrow_scope(granted, f"{base}&{extra}")
