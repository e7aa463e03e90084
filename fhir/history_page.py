"""History pages (FHIR R4B http.html#history): newest version first, paged by a cursor.

A page holds ``_count`` versions (50 by default, 1,000 at most) or fewer when their JSON
reaches ``MAX_PAGE_BYTES``; either way a ``next`` link (a signed cursor, bound to the
hospital and the client like a search's) goes on from the oldest version shown.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fhir.bundle_builder import bundle_text, history_entry
from fhir.errors import FhirError
from fhir.interactions import WHOLE_NUMBER
from fhir.response_size import fitting, note_returned
from fhir.search.cursor import decode_cursor, encode_cursor

DEFAULT_COUNT = 50
MAX_COUNT = 1000


def _count(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_COUNT
    if not WHOLE_NUMBER.fullmatch(raw):
        raise FhirError.invalid("_count must be a whole number.")
    return max(0, min(int(raw), MAX_COUNT))


def history_bundle(
    repo, base: str, self_url: str, args: dict[str, str], resource_type=None, resource_id=None
) -> str:
    """The history Bundle of a resource, a type or the hospital, as one page of JSON text."""
    level = f"_history/{resource_type or ''}/{resource_id or ''}"
    cursor = args.get("_cursor")
    if cursor:
        state = decode_cursor(cursor, hospital_id=repo.hospital_id, client_id=repo.client_id)
        if state.get("t") != level:
            raise FhirError.invalid("The paging cursor belongs to another history.")
        count, before = int(state["n"]), int(state["b"])
    else:
        count, before = _count(args.get("_count")), None
    entries = repo.history(resource_type, resource_id, count=count, before_seq=before)
    shown = entries[: fitting([e.resource for e in entries])]
    note_returned(e.resource for e in shown if e.resource.content is not None)
    links = [{"relation": "self", "url": self_url}]
    if shown and (len(shown) < len(entries) or len(entries) == count):
        state = {"h": repo.hospital_id, "c": repo.client_id, "t": level, "n": count, "b": shown[-1].seq}
        path = "/".join(part for part in (resource_type, resource_id, "_history") if part)
        following = urlencode({"_cursor": encode_cursor(state)})
        links.append({"relation": "next", "url": f"{base}/{path}?{following}"})
    return bundle_text("history", [history_entry(base, e) for e in shown], links=links)
