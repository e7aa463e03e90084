"""SMART on FHIR resource scopes, v1 (``.read``/``.write``/``.*``) and v2 (``.cruds``).

SMART App Launch 2.x §"Scopes for requesting clinical data". Scopes are parsed into
``SmartScope`` values; ``covers`` answers whether granted scopes allow a requested one (the
token endpoint narrows with it, and every request re-checks its token's scopes with it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl

from app.unstorable import URL_UNSTORABLE

CONTEXTS = ("patient", "user", "system")
V2_ORDER = "cruds"
V1_PERMISSIONS = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset(V2_ORDER)}
# Advertised in discovery documents: the shapes a client may request (any resource type
# may stand in for ``*``; v2 permissions may be any ordered subset of ``cruds``).
SCOPES_SUPPORTED = [
    "system/*.cruds",
    "system/*.rs",
    "system/*.read",
    "system/*.write",
    "system/*.*",
    "patient/*.rs",
    "patient/*.read",
    "user/*.rs",
    "user/*.read",
]

# Types a ``*`` scope never covers: only a scope that names the type does. The audit trail
# names other clients, network addresses, patients and their search terms; SMART leaves what
# ``*`` means to the server. ``fhir.policy`` applies the same list at the FHIR API.
NAMED_ONLY_TYPES = frozenset({"AuditEvent"})

# What a v2 search restriction added by narrowing may hold: filters on the resource's own
# elements, ANDed with the granted ones. Not a chain (``subject:Patient.name=x`` would search
# a type the token may not see) nor a parameter starting with ``_`` other than these own-element
# filters (``_has``, ``_count``, ``_include``, ``_elements`` ... filter nothing or look elsewhere).
_OWN_ELEMENT_PARAMETERS = frozenset({"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"})

# RFC 6749 §3.3: scope tokens are NQCHAR (%x21 / %x23-5B / %x5D-7E): no space, quote or backslash.
_SCOPE = re.compile(
    r"(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})"
    r"\.(?P<perm>read|write|\*|c?r?u?d?s?)(?:\?(?P<query>[\x21\x23-\x3e\x40-\x5b\x5d-\x7e]+))?"
)


class ScopeError(ValueError):
    """A scope string is not a SMART resource scope."""


@dataclass(frozen=True)
class SmartScope:
    context: str
    resource_type: str
    permissions: frozenset[str]
    query: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def parse(cls, text: str) -> SmartScope:
        match = _SCOPE.fullmatch(text) if isinstance(text, str) else None
        if not match or match["perm"] == "":
            raise ScopeError(f"not a SMART resource scope: {text[:100]!r}")
        perm = match["perm"]
        permissions = V1_PERMISSIONS.get(perm) or frozenset(perm)
        query = frozenset()
        if match["query"]:
            if perm in V1_PERMISSIONS:
                raise ScopeError(f"search restrictions need a v2 scope: {text[:100]!r}")
            pairs = parse_qsl(match["query"], keep_blank_values=False, strict_parsing=False)
            if not pairs:
                raise ScopeError(f"empty search restriction: {text[:100]!r}")
            # Control characters and lone surrogates, once the percent-encoding is decoded.
            if any(URL_UNSTORABLE.search(key) or URL_UNSTORABLE.search(value) for key, value in pairs):
                # %00 decodes to a NUL, which no query (nor PostgreSQL) may carry.
                raise ScopeError(f"a control character in a search restriction: {text[:100]!r}")
            query = frozenset(pairs)
        return cls(match["context"], match["type"], permissions, query)


def split_scope(text: str) -> list[str]:
    """RFC 6749 §3.3: scope tokens separated by spaces (only U+0020)."""
    return [item for item in text.split(" ") if item]


_RESOURCE_SCOPE_START = ("patient/", "user/", "system/")


def resource_scopes(text: str) -> list[str]:
    """The resource scopes of a granted scope string, without ``launch/patient``, ``openid``,
    ``offline_access`` and the like, which give context or tokens, not access to resources."""
    return [item for item in split_scope(text) if item.startswith(_RESOURCE_SCOPE_START)]


def parse_scopes(text: str | list[str] | None) -> list[SmartScope]:
    """Parse a space-separated scope string (or a list) into SMART scopes."""
    items = split_scope(text) if isinstance(text, str) else list(text or [])
    return [_parse_remembered(item) if _rememberable(item) else SmartScope.parse(item) for item in items]


# Every FHIR request parses its token's and its grant's scopes (~10 us each); the same few
# strings recur, and a SmartScope is immutable. A string that is no scope raises each time;
# a long one (a client may ask for any search restriction) is not kept.
_REMEMBERED_LENGTH = 200


def _rememberable(item) -> bool:
    return isinstance(item, str) and len(item) <= _REMEMBERED_LENGTH


@lru_cache(maxsize=4096)
def _parse_remembered(text: str) -> SmartScope:
    return SmartScope.parse(text)


def covers(granted: list[SmartScope], requested: SmartScope) -> bool:
    """Whether the granted scopes together allow everything the requested scope asks.

    A granted scope counts if its context is the requested one, its type is the requested one
    (or ``*``, except for ``NAMED_ONLY_TYPES``), and the requested search restriction holds
    all of its restriction plus only filters on the type's own elements (``narrows``).
    """
    allowed: set[str] = set()
    for scope in granted:
        if scope.context != requested.context:
            continue
        if scope.resource_type != requested.resource_type and (
            scope.resource_type != "*" or requested.resource_type in NAMED_ONLY_TYPES
        ):
            continue
        if not narrows(scope.query, requested.query):
            continue
        allowed |= scope.permissions
    return requested.permissions <= allowed


def narrows(granted: frozenset[tuple[str, str]], requested: frozenset[tuple[str, str]]) -> bool:
    """Whether search restriction ``requested`` selects at most what ``granted`` does: every
    granted pair, and (ANDed with them, FHIR R4B search.html#combining) own-element filters."""
    if not granted <= requested:
        return False
    return all(_own_element_filter(name) for name, _ in requested - granted)


def _own_element_filter(name: str) -> bool:
    code = name.partition(":")[0]
    return "." not in name and (not code.startswith("_") or code in _OWN_ELEMENT_PARAMETERS)


def normalize_scope_list(items: list[str], *, context: str) -> list[str]:
    """Validate a permission list for a credential whose tokens use ``context`` scopes.

    Returns the scopes without duplicates, in the order given; raises ``ScopeError``.
    """
    seen: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ScopeError("every permission must be a string")
        scope = SmartScope.parse(item)
        if scope.context != context:
            raise ScopeError(f"{item!r} is not a {context}/ scope")
        if item not in seen:
            seen.append(item)
    if not seen:
        raise ScopeError("at least one permission is needed")
    return seen
