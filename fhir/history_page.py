"""History pages (FHIR R4B http.html#history): newest version first, paged by a cursor.

A page holds ``_count`` versions (50 by default, 1,000 at most) or fewer when their JSON
reaches ``MAX_PAGE_BYTES``; either way a ``next`` link (a signed cursor, bound to the
hospital and the client like a search's) goes on from the oldest version scanned. The cursor
names a ``seq`` below which the next page starts: versions written meanwhile have higher ones,
so paging through a history while writes go on shows each older version exactly once.

``_since`` (versions written at or after an instant) and ``_at`` (versions current at some
point during a date's period) narrow it; any other parameter is refused, or left out of the
``self`` link under ``Prefer: handling=lenient``, as for a search.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from fhir.bundle_builder import bundle_text, history_entry
from fhir.errors import FhirError
from fhir.interactions import WHOLE_NUMBER
from fhir.response_size import fitting, note_returned
from fhir.search.cursor import STALE_CURSOR, decode_page_cursor, encode_cursor
from fhir.search.index_values import date_range
from fhir.storage.repository import HistoryRange

DEFAULT_COUNT = 50
MAX_COUNT = 1000
_PARAMETERS = ("_count", "_since", "_at")
_TRANSPORT = frozenset({"_format", "_pretty", "_cursor"})  # how, not which: not in the self link


def _count(raw: str) -> int:
    if not WHOLE_NUMBER.fullmatch(raw):
        raise FhirError.invalid("_count must be a whole number.")
    return max(0, min(int(raw), MAX_COUNT))


def _instant(name: str, raw: str):
    bounds = date_range(raw.strip())
    if bounds is None:
        raise FhirError.invalid(f"{name} takes a FHIR instant (or a date or dateTime), got {raw[:60]!r}.")
    return bounds


class HistoryQuery:
    """What a history request asks for, and the (name, value) pairs it applied."""

    def __init__(self, pairs: Iterable[tuple[str, str]], *, lenient: bool):
        self.count = DEFAULT_COUNT
        self.within = HistoryRange()
        self.applied: list[tuple[str, str]] = []
        seen = set()
        for name, raw in pairs:
            if name in _TRANSPORT:
                continue
            if name not in _PARAMETERS:
                if not lenient:
                    raise FhirError.invalid(
                        f"History takes _count, _since and _at; {name[:60]!r} is not supported."
                    )
                continue
            if name in seen:
                raise FhirError.invalid(f"{name} may be given once.")
            seen.add(name)
            if name == "_count":
                self.count = _count(raw)
            elif name == "_since":
                since, _ = _instant(name, raw)
                self.within = HistoryRange(since, self.within.current_from, self.within.current_until)
            else:
                start, end = _instant(name, raw)
                self.within = HistoryRange(self.within.since, start, end)
            self.applied.append((name, raw))


def history_bundle(repo, base: str, args, *, lenient: bool, resource_type=None, resource_id=None) -> str:
    """The history Bundle of a resource, a type or the hospital, as one page of JSON text.
    ``args``: the request's (name, value) pairs."""
    level = f"_history/{resource_type or ''}/{resource_id or ''}"
    path = "/".join(part for part in (resource_type, resource_id, "_history") if part)
    args = list(args)
    cursor = [value for name, value in args if name == "_cursor"]
    if cursor:
        state = decode_page_cursor(
            cursor[-1], hospital_id=repo.hospital_id, client_id=repo.client_id, page_of=level
        )
        try:
            query, before = HistoryQuery(state["q"], lenient=False), int(state["b"])
        except (KeyError, TypeError, ValueError):  # a cursor of an earlier release
            raise FhirError.invalid(STALE_CURSOR) from None
        self_url = f"{base}/{path}?{urlencode({'_cursor': cursor[-1]})}"
    else:
        query, before = HistoryQuery(args, lenient=lenient), None
        self_url = f"{base}/{path}" + (f"?{urlencode(query.applied)}" if query.applied else "")
    page = repo.history(resource_type, resource_id, within=query.within, count=query.count, before_seq=before)
    entries = page.entries
    shown = entries[: fitting([e.resource for e in entries])]
    note_returned(e.resource for e in shown if e.resource.content is not None)
    # a page the byte budget ended early goes on after the last version shown
    resume_below = shown[-1].seq if shown and len(shown) < len(entries) else page.resume_below
    links = [{"relation": "self", "url": self_url}]
    if resume_below is not None:
        state = {"h": repo.hospital_id, "c": repo.client_id, "t": level, "q": query.applied}
        following = urlencode({"_cursor": encode_cursor({**state, "b": resume_below})})
        links.append({"relation": "next", "url": f"{base}/{path}?{following}"})
    # (A history Bundle's entries are versions only: parameters left out under lenient
    # handling are left out of the self link, with no OperationOutcome entry.)
    return bundle_text("history", [history_entry(base, e) for e in shown], links=links)
