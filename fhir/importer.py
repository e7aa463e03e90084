"""Loading resources into a hospital: FHIR Bundles (JSON) or ndjson files, and generators.

Resources with an id are written with create-on-update (``PUT Type/id``), so loading the
same file twice changes nothing but versions; resources without one are created. A
transaction Bundle is run as one, with its ``urn:uuid:`` references resolved.

``fhirgate import`` sends loose resources (ndjson lines, a collection's entries) to the store
as transaction Bundles of ``BATCH_SIZE``: the same validation and indexing as any write, at the
Bundle path's rate (a few statements and a COPY per table for a whole batch, where a resource at
a time cost a round trip or more each). A resource the store refuses is reported with its place
(file and line) and the reason, and the others are loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.extensions import db
from app.json_depth import nested_within
from fhir import exact_json
from fhir.bundles import process_bundle
from fhir.errors import FhirError
from fhir.http import MAX_BODY_DEPTH, base_url
from fhir.model_classes import is_resource_type
from fhir.sandbox.bundles import transaction_bundles
from fhir.storage.sql import SqlRepository
from fhir.storage.writes import discard_pending
from fhir.validation import validate_resource

BATCH_SIZE = 500
BUNDLE_TYPES = ("transaction", "batch", "collection", "searchset")


@dataclass(frozen=True)
class Unreadable:
    """An item of a file that is not usable JSON, and why."""

    reason: str


@dataclass(frozen=True)
class Refusal:
    place: str  # file, file:line, or file:line entry n
    reason: str


@dataclass
class ImportReport:
    resources: int = 0
    files: int = 0
    refused: list[Refusal] = field(default_factory=list)


def load_resources(repo: SqlRepository, resources: Iterable[dict], batch_size: int = BATCH_SIZE) -> int:
    """Write resources in batches of one transaction each; return how many were written."""
    written = 0
    for resource in resources:
        resource = validate_resource(resource)
        if resource.get("id"):
            repo.update(resource["resourceType"], resource["id"], resource)
        else:
            repo.create(resource)
        written += 1
        if written % batch_size == 0:
            repo.session.commit()
    repo.session.commit()
    return written


def load_in_transactions(hospital_id: str, resources: Iterable[dict], per_bundle: int = BATCH_SIZE) -> int:
    """Write resources that carry ids as transaction Bundles of ``PUT Type/id`` entries, one
    committed transaction each; return how many were written. The Bundle path writes a batch
    at once (a few statements and a COPY per table), where ``load_resources`` costs a round
    trip or more per resource: for ``fhirgate sandbox seed`` on PostgreSQL, ~1,000 resources/s
    instead of ~70/s."""
    repo = SqlRepository(db.session, hospital_id, base_url=base_url(hospital_id))
    written = 0
    for bundle in transaction_bundles(resources, per_bundle):
        written += _run_transaction(repo, bundle)
    return written


def _run_transaction(repo: SqlRepository, bundle: dict) -> int:
    """Run a transaction Bundle and commit it; return how many entries it wrote."""
    process_bundle(repo, bundle, repo.base_url, lambda *args: "{}", with_body=False)
    repo.session.commit()
    return len(bundle.get("entry") or [])


Progress = Callable[[int], None]  # told how many bytes of the files were read since last time
_ENTRY_ERROR = re.compile(r"Bundle entry (\d+): (.*)", re.DOTALL)


def _resources_of(path: Path, progress: Progress) -> Iterator[tuple[str, object]]:
    """Yield (place, resource-or-Bundle), or (place, Unreadable) for an item that is not
    usable JSON, from a JSON or ndjson file."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
        handle.seek(0)
        stripped = head.lstrip()
        single_json = stripped.startswith(b"{") and b"\n{" not in stripped.rstrip()
        if path.suffix in (".ndjson", ".jsonl") or not single_json:
            for number, line in enumerate(handle, start=1):
                progress(len(line))
                if line.strip():
                    yield f"{path}:{number}", _parse(line)
        else:
            raw = handle.read()
            progress(len(raw))
            yield str(path), _parse(raw)


def _parse(raw: bytes) -> object:
    try:
        item = exact_json.loads(raw)
    except ValueError as error:
        return Unreadable(f"not valid JSON ({error})")
    if not nested_within(item, MAX_BODY_DEPTH):
        return Unreadable(f"nested deeper than {MAX_BODY_DEPTH} levels")
    return item


class _Batch:
    """Loose resources on their way to the store as one transaction Bundle."""

    def __init__(self, repo: SqlRepository, report: ImportReport, size: int):
        self.repo, self.report, self.size = repo, report, size
        # (place, resource, whether it came with an id): a failed attempt stamps the ids it
        # gave, and a retry must still create those resources rather than update them
        self.items: list[tuple[str, dict, bool]] = []
        self.ids: set[tuple[str, str]] = set()

    def add(self, place: str, resource: dict) -> None:
        key = (resource.get("resourceType"), resource.get("id"))
        if key[1] is not None and key in self.ids:
            self.flush()  # a transaction writes a resource once: its next version goes in the next
        self.items.append((place, resource, key[1] is not None))
        if key[1] is not None:
            self.ids.add(key)
        if len(self.items) >= self.size:
            self.flush()

    def flush(self) -> None:
        items, self.items, self.ids = self.items, [], set()
        checked = False
        while items:
            try:
                self.report.resources += _run_transaction(self.repo, _transaction_of(items))
                return
            except FhirError as error:
                discard_pending(self.repo.session)
                if not checked:
                    # One refused resource fails the whole Bundle: find every invalid one at once.
                    items, checked = self._valid(items), True
                    continue
                index, reason = _entry_of(error)
                if index is None or index >= len(items):
                    self.report.refused.extend(Refusal(item[0], reason) for item in items)
                    return
                self.report.refused.append(Refusal(items.pop(index)[0], reason))

    def _valid(self, items: list[tuple[str, dict, bool]]) -> list[tuple[str, dict, bool]]:
        kept = []
        for item in items:
            try:
                validate_resource(item[1])
            except FhirError as error:
                self.report.refused.append(Refusal(item[0], _reason(error)))
            else:
                kept.append(item)
        return kept


def _transaction_of(items: list[tuple[str, dict, bool]]) -> dict:
    entries = []
    for _, resource, with_id in items:
        resource_type = resource.get("resourceType")
        if with_id:
            request = {"method": "PUT", "url": f"{resource_type}/{resource['id']}"}
        else:
            request = {"method": "POST", "url": str(resource_type)}
        entries.append({"resource": resource, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _reason(error: FhirError) -> str:
    return "; ".join(issue.diagnostics for issue in error.issues) or str(error)


def _entry_of(error: FhirError) -> tuple[int | None, str]:
    """The index of the Bundle entry an error names, and the error without that prefix."""
    reason = _reason(error)
    named = _ENTRY_ERROR.match(reason)
    return (int(named.group(1)), named.group(2)) if named else (None, reason)


def import_files(
    hospital_id: str, paths: list[Path], batch_size: int = BATCH_SIZE, progress: Progress = lambda _: None
) -> ImportReport:
    """``fhirgate import``: load each file into the hospital's store; what could not be loaded
    is in the report's ``refused``, the rest is stored."""
    repo = SqlRepository(db.session, hospital_id, base_url=base_url(hospital_id))
    report = ImportReport()
    batch = _Batch(repo, report, batch_size)
    for path in paths:
        for place, item in _resources_of(path, progress):
            if isinstance(item, Unreadable):
                report.refused.append(Refusal(place, item.reason))
            else:
                _load_item(repo, batch, report, item, place)
        report.files += 1
    batch.flush()
    return report


def _load_item(repo: SqlRepository, batch: _Batch, report: ImportReport, item: object, place: str) -> None:
    resource_type = item.get("resourceType") if isinstance(item, dict) else None
    if not isinstance(resource_type, str) or not is_resource_type(resource_type):
        report.refused.append(Refusal(place, "not a FHIR resource: no known resourceType"))
    elif resource_type != "Bundle" or item.get("type") not in BUNDLE_TYPES:
        batch.add(place, item)
    elif item["type"] in ("transaction", "batch"):
        batch.flush()  # in file order: the Bundle may refer to what came before it
        try:
            # Loading is all-or-nothing per Bundle: a batch is run as a transaction too.
            report.resources += _run_transaction(repo, {**item, "type": "transaction"})
        except FhirError as error:
            discard_pending(repo.session)
            report.refused.append(Refusal(place, f"the Bundle was not loaded: {_reason(error)}"))
    else:
        entries = item.get("entry") or []
        for n, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                _load_item(repo, batch, report, entry["resource"], f"{place} entry {n}")
