"""How much one FHIR response may make a worker hold, and which resources it carried.

A search page, a history page or a ``$everything`` page ends early once its resources reach
``MAX_PAGE_BYTES``, with a ``next`` link to the rest: a server may return fewer resources than
``_count`` asks (FHIR R4B search.html#count), so nothing is lost and nothing is truncated
silently. A batch or transaction Bundle's GET entries are bounded as a whole before any of
them runs (``MAX_BUNDLE_READ_ENTRIES``, ``MAX_BUNDLE_READ_RESOURCES``) and while they run
(``MAX_BUNDLE_READ_BYTES``); beyond a bound the request is refused with 413 ``too-costly``.

Responses are spliced from the stored JSON text, never built as Python objects, and the
resources they carry are noted here as they are spliced, for the request's AuditEvent
(``fhir.audit``), so that nothing parses a response again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from flask import g, has_app_context

from fhir.errors import TOO_COSTLY, FhirError
from fhir.storage.repository import StoredResource

# Sizes are the JSON texts' lengths in characters (bytes, for the ASCII most FHIR JSON is).
# One page of search, history or $everything results: 1,000 typical resources take 1-3 MB.
MAX_PAGE_BYTES = 8 * 1024 * 1024
# A Bundle's GET (and HEAD) entries: each is a query.
MAX_BUNDLE_READ_ENTRIES = 1_000
# The resources they may ask for: a read counts one, a search its _count (default 20; a
# _cursor page, whose count the cursor holds, the most a page may have).
MAX_BUNDLE_READ_RESOURCES = 5_000
# The JSON their results may add up to (includes counted): the Bundle's response stays near it.
MAX_BUNDLE_READ_BYTES = 16 * 1024 * 1024
# The resources named in a request's AuditEvent.
MAX_NOTED = 200

_NOTED = "fhir_returned_resources"


def too_costly(message: str) -> FhirError:
    return FhirError.simple(413, TOO_COSTLY, message)


def fitting(resources: Sequence[StoredResource]) -> int:
    """How many of ``resources`` (in order, at least one) a page of ``MAX_PAGE_BYTES`` holds."""
    used = 0
    for kept, stored in enumerate(resources):
        used += len(stored.content or "")
        if used > MAX_PAGE_BYTES and kept:
            return kept
    return len(resources)


def page_bytes(resources: Sequence[StoredResource]) -> int:
    return sum(len(stored.content or "") for stored in resources)


def fitted_page(
    matches: list[StoredResource], included_for: Callable[[list[str]], list[StoredResource]]
) -> tuple[list[StoredResource], list[StoredResource]]:
    """The first of a search page's ``matches`` that fit ``MAX_PAGE_BYTES`` together with what
    they include (``included_for(ids)``): halved while the includes overflow it, down to one."""
    matches = matches[: fitting(matches)]
    while True:
        included = included_for([m.id for m in matches])
        if len(matches) <= 1 or page_bytes(matches) + page_bytes(included) <= MAX_PAGE_BYTES:
            return matches, included
        matches = matches[: len(matches) // 2]


def note_returned(resources: Iterable[StoredResource]) -> None:
    """Remember that the response being built carries these resources (the first MAX_NOTED)."""
    note_references(f"{stored.resource_type}/{stored.id}" for stored in resources)


def note_references(references: Iterable[str]) -> None:
    """``note_returned`` for resources known by ``Type/id`` only (a connected hospital's)."""
    if not has_app_context():
        return
    noted = g.setdefault(_NOTED, {})
    for reference in references:
        if len(noted) >= MAX_NOTED:
            return
        noted[reference] = None


def returned_resources() -> list[str]:
    """The resources noted for this request's response, in order, without repeats."""
    return list(g.get(_NOTED) or ())


def forget_returned() -> None:
    """Drop what was noted: the request is being run again from the start (``fhir.retry``)."""
    g.pop(_NOTED, None)
