"""Batch and transaction Bundles (FHIR R4B http.html#transaction).

A transaction runs in one database transaction: it resolves ``urn:uuid:`` and conditional
references first, processes DELETE, POST, PUT/PATCH, then GET, and any failure rolls back
every entry. A batch runs each entry in its own savepoint and reports each outcome.

The response is spliced from JSON text (stored resources, search Bundles) rather than built
as Python objects, and what the GET entries may read is bounded (``fhir.response_size``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import orjson

from fhir import exact_json, interactions, validation_helper
from fhir.conditional import conditional_create, conditional_delete, conditional_update
from fhir.errors import FhirError, Issue
from fhir.model_classes import is_resource_type
from fhir.resource_rules import is_conditional_reference
from fhir.response_size import (
    MAX_BUNDLE_READ_BYTES,
    MAX_BUNDLE_READ_ENTRIES,
    MAX_BUNDLE_READ_RESOURCES,
    note_returned,
    too_costly,
)
from fhir.search.request import DEFAULT_COUNT, MAX_COUNT
from fhir.storage.repository import StoredResource, format_instant
from fhir.storage.sql import SqlRepository, new_id
from fhir.validation import validate_resource

MAX_ENTRIES = 10_000
_READS = ("GET", "HEAD")
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}


class _Entry:
    def __init__(self, index: int, raw: dict):
        self.index = index
        self.raw = raw
        request = raw.get("request")
        if not isinstance(request, dict):
            raise _fail(index, "entry.request is missing.")
        self.method = str(request.get("method", "")).upper()
        if self.method not in _ORDER:
            raise _fail(index, f"entry.request.method {self.method[:10]!r} is not supported.")
        url = request.get("url")
        if not isinstance(url, str) or not url:
            raise _fail(index, "entry.request.url is missing.")
        self.request = request
        parts = _split_url(url, index)
        self.path = parts.path.strip("/")
        self.query = parts.query
        self.full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
        self.resource = raw.get("resource")
        segments = self.path.split("/") if self.path else []
        self.resource_type = segments[0] if segments else ""
        self.resource_id = segments[1] if len(segments) > 1 else None
        if self.method != "GET" and not is_resource_type(self.resource_type):
            raise _fail(index, f"entry.request.url names no resource type: {url[:80]!r}.")


class _ReadBudgetSpent(Exception):
    """The GET entries have answered MAX_BUNDLE_READ_BYTES: the whole Bundle is refused."""


def _split_url(url: str, index: int):
    try:
        return urlsplit(url)
    except ValueError:  # urlsplit refuses e.g. an unclosed IPv6 bracket ("http://[x")
        raise _fail(index, f"entry.request.url is not a URL: {url[:80]!r}.") from None


def _fail(index: int, message: str, status: int = 400) -> FhirError:
    return FhirError.simple(
        status, "invalid" if status == 400 else "processing", f"Bundle entry {index}: {message}"
    )


def _rewrite_references(value, mapping: dict[str, str]):
    """Replace ``urn:uuid:`` (and other fullUrl) references with the resources' new ids."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item in mapping:
                out[key] = mapping[item]
            else:
                out[key] = _rewrite_references(item, mapping)
        return out
    if isinstance(value, list):
        return [_rewrite_references(item, mapping) for item in value]
    return value


def _resolve_conditional_references(repo: SqlRepository, value, index: int):
    """``Patient?identifier=x`` references must match exactly one resource (http.html#trules)."""
    if isinstance(value, dict) and "resourceType" in value and b"?" not in exact_json.dumps(value):
        return  # no reference of the resource can be conditional: not walked (a C-speed look)
    if isinstance(value, dict):
        for key, item in list(value.items()):
            if key == "reference" and isinstance(item, str) and is_conditional_reference(item):
                resource_type, _, criteria = item.partition("?")
                if not is_resource_type(resource_type):
                    raise _fail(index, f"Bad conditional reference {item[:80]!r}.")
                matches = repo.find(resource_type, criteria)
                if len(matches) != 1:
                    raise _fail(
                        index,
                        f"The conditional reference {item[:80]!r} matches {len(matches)} resources.",
                        412,
                    )
                value[key] = f"{resource_type}/{matches[0]}"
            elif isinstance(item, dict | list):
                _resolve_conditional_references(repo, item, index)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                _resolve_conditional_references(repo, item, index)


def _claim(written: dict, entry: _Entry, resource_id: str | None) -> None:
    """http.html#trules: a transaction whose writes (conditional ones once resolved) touch one
    resource twice fails; which of the two would win is not defined."""
    if resource_id is None:
        return
    key = (entry.resource_type, resource_id)
    if key in written:
        raise FhirError.invalid(
            f"{entry.method} writes {key[0]}/{key[1]}, which entry {written[key]} writes too; "
            "a transaction may write each resource once."
        )
    written[key] = entry.index


def _dumps(value) -> str:
    return orjson.dumps(value).decode()


def _response_entry(
    status: int, stored: StoredResource | None, base: str, with_body: bool, *, location: bool = True
) -> str:
    """A response entry as JSON text, the stored resource spliced in unparsed."""
    response = {"status": _STATUS_TEXT.get(status, str(status))}
    parts = []
    if stored is not None:
        response["etag"] = stored.etag
        response["lastModified"] = format_instant(stored.last_updated)
        if status == 201 or stored.content is not None:
            note_returned((stored,))
            if location:
                response["location"] = f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
        if with_body and stored.content is not None:
            parts.append(f'"fullUrl":{_dumps(f"{base}/{stored.resource_type}/{stored.id}")}')
            parts.append(f'"resource":{stored.content}')
    parts.append(f'"response":{_dumps(response)}')
    return "{" + ",".join(parts) + "}"


def _declared_resources(query: str) -> int:
    """What a GET entry may return, judged from its URL alone: a read one, a search its _count."""
    if not query:
        return DEFAULT_COUNT
    count = DEFAULT_COUNT
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "_cursor":
            return MAX_COUNT
        if key == "_count" and value.isascii() and value.isdigit():
            count = min(int(value), MAX_COUNT)
        elif key == "_summary" and value == "count":
            return 0
    return count


def _check_reads(raw_entries: list) -> None:
    """Refuse, before any runs, GET entries that together would read too much."""
    reads = resources = 0
    for raw in raw_entries:
        request = raw.get("request") if isinstance(raw, dict) else None
        if not isinstance(request, dict) or str(request.get("method", "")).upper() not in _READS:
            continue
        url = request.get("url")
        try:
            parts = urlsplit(url) if isinstance(url, str) else None
        except ValueError:  # e.g. an unclosed "[": the entry itself reports it when it runs
            parts = None
        reads += 1
        searches = parts is not None and len(parts.path.strip("/").split("/")) == 1
        resources += _declared_resources(parts.query) if searches else 1
    if reads > MAX_BUNDLE_READ_ENTRIES:
        raise too_costly(f"A Bundle may carry at most {MAX_BUNDLE_READ_ENTRIES:,} GET entries.")
    if resources > MAX_BUNDLE_READ_RESOURCES:
        raise too_costly(
            f"The Bundle's GET entries ask for up to {resources:,} resources, more than the "
            f"{MAX_BUNDLE_READ_RESOURCES:,} one Bundle may read (a search counts its _count); "
            "split it or page the searches."
        )


class BundleProcessor:
    def __init__(self, repo: SqlRepository, base: str, search: Callable[[str, list], str], with_body: bool):
        self.repo = repo
        self.base = base
        self.search = search
        self.with_body = with_body
        self.read_bytes = 0  # what the GET entries have answered so far

    def _execute(self, entry: _Entry) -> tuple[str, str | None]:
        """The entry's response, and the id of the resource it wrote (None for reads and creates)."""
        repo, method = self.repo, entry.method
        if method in ("GET", "HEAD"):
            return self._read(entry), None
        if method == "DELETE":
            if entry.resource_id:
                stored = interactions.delete(repo, entry.resource_type, entry.resource_id)
            else:
                stored = conditional_delete(repo, entry.resource_type, entry.query)
            deleted = entry.resource_id or (stored.id if stored else None)
            return _response_entry(204, stored, self.base, False), deleted
        if method == "POST":
            criteria = entry.request.get("ifNoneExist")
            if isinstance(criteria, str) and criteria:
                stored, created = conditional_create(
                    repo, entry.resource_type, entry.resource, criteria.lstrip("?")
                )
                return _response_entry(201 if created else 200, stored, self.base, self.with_body), None
            resource = validate_resource(entry.resource, entry.resource_type)
            resource.pop("id", None)
            stored = repo.create(resource, resource_id=entry.new_id)
            return _response_entry(201, stored, self.base, self.with_body), None
        if method == "PATCH":
            if not entry.resource_id:
                raise _fail(entry.index, "PATCH needs Type/id.")
            patch = entry.resource
            if isinstance(patch, dict) and patch.get("resourceType") == "Binary":
                patch = exact_json.loads(_binary_text(patch, entry.index))
            stored = interactions.patch(
                repo, entry.resource_type, entry.resource_id, patch, entry.request.get("ifMatch")
            )
            return _response_entry(200, stored, self.base, self.with_body), stored.id
        if entry.resource_id:
            stored, created = interactions.update(
                repo, entry.resource_type, entry.resource_id, entry.resource, entry.request.get("ifMatch")
            )
        else:
            stored, created = conditional_update(
                repo, entry.resource_type, entry.query, entry.resource, entry.request.get("ifMatch")
            )
        return _response_entry(201 if created else 200, stored, self.base, self.with_body), stored.id

    def _read(self, entry: _Entry) -> str:
        segments = entry.path.split("/")
        if len(segments) in (2, 4) and (len(segments) == 2 or segments[2] == "_history"):
            if not is_resource_type(segments[0]):
                raise FhirError.not_found(f"Unknown resource type {segments[0][:64]!r}.")
            if len(segments) == 2:
                stored = interactions.read(self.repo, segments[0], segments[1])
            else:
                stored = interactions.vread(self.repo, segments[0], segments[1], segments[3])
            self._count_read(len(stored.content or ""))
            return _response_entry(200, stored, self.base, True, location=False)
        if len(segments) == 1 and is_resource_type(segments[0]):
            text = self.search(segments[0], parse_qsl(entry.query, keep_blank_values=True))
            self._count_read(len(text))
            return '{"resource":' + text + ',"response":{"status":"200 OK"}}'
        raise FhirError.not_supported(f"GET {entry.path[:80]!r} is not supported in a Bundle.")

    def _count_read(self, size: int) -> None:
        self.read_bytes += size
        if self.read_bytes > MAX_BUNDLE_READ_BYTES:
            raise _ReadBudgetSpent()

    def _prepare_transaction(self, entries: list[_Entry]) -> None:
        """Give every POST its id up front and rewrite references to the new ids."""
        mapping: dict[str, str] = {}
        for entry in entries:
            entry.new_id = None
            if entry.method == "POST":
                entry.new_id = new_id()
                if entry.full_url:
                    mapping[entry.full_url] = f"{entry.resource_type}/{entry.new_id}"
            elif (
                entry.method == "PUT"
                and entry.resource_id
                and entry.full_url
                and entry.full_url.startswith("urn:")
            ):
                mapping[entry.full_url] = f"{entry.resource_type}/{entry.resource_id}"
        for entry in entries:
            if isinstance(entry.resource, dict):
                if mapping:
                    entry.resource = _rewrite_references(entry.resource, mapping)
                _resolve_conditional_references(self.repo, entry.resource, entry.index)

    def transaction(self, raw_entries: list) -> str:
        entries = []
        for index, raw in enumerate(raw_entries):
            if not isinstance(raw, dict):
                raise _fail(index, "an entry must be an object.")
            entries.append(_Entry(index, raw))
        self._prepare_transaction(entries)
        # One query learns (and locks) every resource the Bundle writes to by id.
        self.repo.prefetch(
            [
                (e.resource_type, e.resource_id)
                for e in entries
                if e.resource_id and e.method in ("PUT", "PATCH", "DELETE")
            ]
        )
        results: dict[int, str] = {}
        ordered = sorted(entries, key=lambda e: (_ORDER[e.method], e.index))
        bodies = [e.resource for e in ordered if e.method in ("POST", "PUT") and isinstance(e.resource, dict)]
        written: dict[tuple[str, str], int] = {}  # each resource a write touched: its entry
        with validation_helper.helper.validating(bodies):
            for entry in ordered:
                try:
                    results[entry.index], written_id = self._execute(entry)
                    _claim(written, entry, written_id)
                except FhirError as error:
                    error.issues = [
                        Issue(
                            issue.code,
                            f"Bundle entry {entry.index}: {issue.diagnostics}",
                            expression=issue.expression,
                        )
                        for issue in error.issues
                    ]
                    raise
        return _bundle("transaction-response", [results[i] for i in range(len(entries))])

    def batch(self, raw_entries: list) -> str:
        results = []
        for index, raw in enumerate(raw_entries):
            try:
                with self.repo.savepoint():
                    if not isinstance(raw, dict):
                        raise _fail(index, "an entry must be an object.")
                    entry = _Entry(index, raw)
                    entry.new_id = None
                    if isinstance(entry.resource, dict):
                        _resolve_conditional_references(self.repo, entry.resource, index)
                    results.append(self._execute(entry)[0])
            except FhirError as error:
                response = {"status": str(error.status), "outcome": error.outcome()}
                results.append('{"response":' + _dumps(response) + "}")
        return _bundle("batch-response", results)


def _binary_text(binary: dict, index: int) -> bytes:
    try:
        return base64.b64decode(binary.get("data", ""), validate=True)
    except (binascii.Error, ValueError):
        raise _fail(index, "the Binary patch body is not base64.") from None


def _bundle(bundle_type: str, entries: list[str]) -> str:
    return f'{{"resourceType":"Bundle","type":"{bundle_type}","entry":[' + ",".join(entries) + "]}"


def process_bundle(repo: SqlRepository, body: object, base: str, search, *, with_body: bool = True) -> str:
    """Check the Bundle's shape and run it as a batch or a transaction: the response's JSON."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError.invalid("POST to the base URL takes a batch or transaction Bundle.")
    bundle_type = body.get("type")
    if bundle_type not in ("batch", "transaction"):
        raise FhirError.invalid("The Bundle's type must be batch or transaction.", ["Bundle.type"])
    entries = body.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError.invalid("Bundle.entry must be a list.", ["Bundle.entry"])
    if len(entries) > MAX_ENTRIES:
        raise too_costly(f"A Bundle may carry at most {MAX_ENTRIES:,} entries.")
    _check_reads(entries)
    processor = BundleProcessor(repo, base, search, with_body)
    try:
        if bundle_type == "transaction":
            return processor.transaction(entries)
        return processor.batch(entries)
    except _ReadBudgetSpent:
        raise too_costly(
            f"The Bundle's GET entries answer more than {MAX_BUNDLE_READ_BYTES:,} bytes of JSON, the most "
            "one Bundle may return; split it or page the searches."
        ) from None
