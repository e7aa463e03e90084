"""``narrow_scope`` remembers its common answers, never its refusals, and never long scopes."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749.errors import InvalidScopeError

from oauth.grants import REMEMBERED_SCOPES_LENGTH, _remembered_narrowing, narrow_scope

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
