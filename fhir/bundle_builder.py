"""Building response Bundles around stored JSON text, without parsing it again."""

from __future__ import annotations

import orjson

from app.timeutil import utcnow
from fhir.storage.repository import HistoryEntry, StoredResource, format_instant

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


def json_text(value) -> str:
    return orjson.dumps(value).decode()


def bundle_text(bundle_type: str, entries: list[str], *, total: int | None = None, links: list[dict]) -> str:
    head = {"resourceType": "Bundle", "type": bundle_type, "timestamp": format_instant(utcnow())}
    if total is not None:
        head["total"] = total
    head["link"] = links
    return json_text(head)[:-1] + ',"entry":[' + ",".join(entries) + "]}"


def resource_entry(
    base: str, stored: StoredResource, mode: str | None = None, score: float | None = None
) -> str:
    full_url = f"{base}/{stored.resource_type}/{stored.id}"
    search = ""
    if mode:
        search = ',"search":' + json_text({"mode": mode} if score is None else {"mode": mode, "score": score})
    return f'{{"fullUrl":{json_text(full_url)},"resource":{stored.content}{search}}}'


def history_entry(base: str, entry: HistoryEntry) -> str:
    stored = entry.resource
    full_url = f"{base}/{stored.resource_type}/{stored.id}"
    url = f"{stored.resource_type}/{stored.id}" if entry.method != "POST" else stored.resource_type
    request = {"method": entry.method, "url": url}
    response = {
        "status": _STATUS[entry.method] if stored.version_id > 1 or entry.method != "PUT" else "201 Created",
        "etag": stored.etag,
        "lastModified": format_instant(stored.last_updated),
    }
    parts = [f'"fullUrl":{json_text(full_url)}']
    if stored.content is not None:
        parts.append(f'"resource":{stored.content}')
    parts.append(f'"request":{json_text(request)}')
    parts.append(f'"response":{json_text(response)}')
    return "{" + ",".join(parts) + "}"
