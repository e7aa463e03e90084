"""The repository on SQLAlchemy Core, for SQLite and PostgreSQL.

Every write stores the version in ``fhir_history``, the current state in
``fhir_resources`` and the search index rows, in the caller's transaction: a failed
request or transaction Bundle rolls all of it back together.
"""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.direct_reads import DirectReads
from app.extensions import db
from app.sqlite_transactions import begin_writing
from app.timeutil import as_utc, utcnow
from fhir import exact_json
from fhir.errors import FhirError
from fhir.everything import everything
from fhir.search.builder import Restriction, restrict_mixed_types
from fhir.search.extract import IndexValues, extract
from fhir.search.index_values import indexable_number
from fhir.search.registry import resource_types
from fhir.search.service import SearchContext, find_ids, search
from fhir.search.system import search_system
from fhir.storage import tables
from fhir.storage.history_walk import hospital_rows
from fhir.storage.repository import HistoryEntry, HistoryPage, HistoryRange, StoredResource, format_instant
from fhir.storage.writes import PendingWrites, VersionState, bulk_insert, flush_pending, next_seqs, pending

CURRENT_ROW_COLUMNS = ("version_id", "last_updated", "deleted", "content")
_CURRENT_ROW = (
    f"SELECT {', '.join(CURRENT_ROW_COLUMNS)} FROM fhir_resources"  # noqa: S608 - constants only
    " WHERE hospital_id = %s AND resource_type = %s AND id = %s"
)
_CURRENT_ROW_NUMBERED = _CURRENT_ROW.replace("%s", "$1", 1).replace("%s", "$2", 1).replace("%s", "$3", 1)


@dataclass(frozen=True)
class _CurrentRow:
    version_id: int
    last_updated: datetime
    deleted: bool
    content: str | None


def _current_row_from_text(row: tuple[str | None, ...]) -> _CurrentRow:
    """A row of ``_CURRENT_ROW`` in PostgreSQL's text format (``app.direct_reads``)."""
    version_id, last_updated, deleted, content = row
    return _CurrentRow(int(version_id), as_utc(datetime.fromisoformat(last_updated)), deleted == "t", content)


def stored_from_text(
    resource_type: str, resource_id: str, row: tuple[str | None, ...]
) -> StoredResource | None:
    """The resource in a text row of ``CURRENT_ROW_COLUMNS``; None if the row is all NULL (no
    such resource: an outer join found nothing)."""
    if row[0] is None:
        return None
    current = _current_row_from_text(row)
    return StoredResource(
        resource_type, resource_id, current.version_id, current.last_updated, current.deleted, current.content
    )


def new_id() -> str:
    return str(uuid.uuid4())


def time_ordered_id(moment: datetime) -> str:
    """A UUIDv7 (RFC 9562 section 5.7): the moment's Unix milliseconds, then 74 random bits.

    For append-only resources (AuditEvents): consecutive ids land at the right edge of every
    index keyed by id, where a random id touches a random page of each.
    """
    milliseconds = int(moment.timestamp() * 1000) & (1 << 48) - 1
    random_bits = int.from_bytes(os.urandom(10), "big")
    rand_a, rand_b = random_bits >> 68, random_bits & (1 << 62) - 1
    digits = f"{milliseconds << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def index_rows(
    owner: tuple[str, str, str], values: IndexValues, index: dict[str, list[tuple]], compartments: list[tuple]
) -> None:
    """Add a resource's index and compartment rows, as tuples in each table's column order."""
    index["string"].extend((*owner, p, v, e) for p, v, e in values.strings)
    index["token"].extend(
        (*owner, p, s and s[:256], c and c[:256], t and t[:256]) for p, s, c, t in values.tokens
    )
    index["reference"].extend((*owner, p, tt, ti, ref[:512]) for p, tt, ti, ref in values.references)
    index["date"].extend((*owner, p, lo, hi) for p, lo, hi in values.dates)
    index["number"].extend(
        (*owner, p, lo, hi, (lo + hi) / 2) for p, lo, hi in values.numbers if indexable_number(lo, hi)
    )
    index["quantity"].extend(
        (*owner, p, lo, hi, s and s[:256], c and c[:256], u and u[:256], (lo + hi) / 2)
        for p, lo, hi, s, c, u in values.quantities
        if indexable_number(lo, hi)
    )
    index["uri"].extend((*owner, p, v[:512]) for p, v in values.uris)
    index["composite"].extend((*owner, *row) for row in values.composites)
    hospital_id, resource_type, resource_id = owner
    compartments.extend(
        (hospital_id, patient, resource_type, resource_id) for patient in sorted(values.compartment_patients)
    )


def patient_exists(hospital_id: str, patient_id: str) -> bool:
    """Whether the hospital's store holds a current (not deleted) Patient with this id."""
    return SqlRepository(db.session, hospital_id).exists("Patient", patient_id)


class SqlRepository:
    """One hospital's resources in the SQL store, as one client may see them."""

    def __init__(
        self,
        session: Session,
        hospital_id: str,
        *,
        client_id: str = "",
        base_url: str = "",
        restrict: Restriction | None = None,
        direct: DirectReads | None = None,
    ):
        self.session = session
        self.hospital_id = hospital_id
        self.client_id = client_id
        self.base_url = base_url
        self.restrict = restrict
        # Given only where the request reads committed data alone (a GET read): the current
        # row then comes over libpq, without checking out a session connection.
        self.direct = direct

    # -- search -----------------------------------------------------------------------
    def _search_context(self) -> SearchContext:
        return SearchContext(self.session, self.hospital_id, self.client_id, self.base_url, self.restrict)

    def search(
        self, resource_type: str, args: list[tuple[str, str]], *, lenient: bool = False, compartment=None
    ) -> str:
        """FHIR R4B search.html: the searchset Bundle as JSON text (``compartment``: a Patient id)."""
        self.flush()
        return search(self._search_context(), resource_type, args, lenient=lenient, compartment=compartment)

    def search_system(
        self, types: list[str], args: list[tuple[str, str]], *, lenient: bool = False, restrict_for=None
    ) -> str:
        """A system search over ``types`` (``_type``): the searchset Bundle as JSON text;
        ``restrict_for(types searched)``: the access restriction, once the types are known."""
        self.flush()
        return search_system(self._search_context(), types, args, lenient=lenient, restrict_for=restrict_for)

    def everything(self, patient_id: str, args: list[tuple[str, str]], *, lenient: bool = False) -> str:
        """Patient/$everything as a searchset Bundle (JSON text)."""
        self.flush()
        return everything(self._search_context(), patient_id, args, lenient=lenient)

    def find(self, resource_type: str, criteria: str, limit: int = 2) -> list[str]:
        """Ids of the resources matching a conditional ``criteria`` query string."""
        self.flush()
        return find_ids(self._search_context(), resource_type, criteria, limit)

    # -- reads ------------------------------------------------------------------------
    @property
    def _writes(self) -> PendingWrites:
        return pending(self.session)

    def flush(self) -> None:
        """Send buffered writes to the database (any read of the store does this first)."""
        flush_pending(self.session)

    @contextmanager
    def savepoint(self):
        """A nested transaction whose buffered writes are flushed inside it, or dropped."""
        self.flush()
        try:
            with self.session.begin_nested():
                yield
                self.flush()
        except BaseException:
            pending(self.session).__init__()
            raise

    def _row(self, resource_type: str, resource_id: str, *, lock: bool = False) -> _CurrentRow | None:
        """The current row by primary key, as driver SQL: a read's hot path.

        SQLAlchemy Core costs about 0.45 ms of Python per statement here, driver SQL 0.1 ms;
        ``exec_driver_sql`` still runs the engine events (writes.py waits for a COPY there).
        A direct read (``app.direct_reads``), when the repository has one, costs less still.
        """
        if self.direct is not None and not lock:
            rows = self.direct.run(
                "fhirgate_current_row", _CURRENT_ROW_NUMBERED, (self.hospital_id, resource_type, resource_id)
            )
            if rows is not None:  # else the direct read failed: the session's way below
                return _current_row_from_text(rows[0]) if rows else None
        self.flush()
        connection = self.session.connection()
        postgres = connection.dialect.name == "postgresql"
        if lock:
            begin_writing(connection)  # SQLite's FOR UPDATE: its write lock
        sql = _CURRENT_ROW + (" FOR UPDATE" if lock and postgres else "")
        if not postgres:
            sql = sql.replace("%s", "?")
        row = connection.exec_driver_sql(sql, (self.hospital_id, resource_type, resource_id)).first()
        if row is None:
            return None
        last_updated = row[1] if isinstance(row[1], datetime) else datetime.fromisoformat(row[1])
        return _CurrentRow(row[0], as_utc(last_updated), bool(row[2]), row[3])

    def read(self, resource_type: str, resource_id: str) -> StoredResource:
        """FHIR R4B http.html#read: one primary-key lookup."""
        row = self._row(resource_type, resource_id)
        if row is None:
            raise FhirError.not_found(f"No such {resource_type}.")
        stored = StoredResource(
            resource_type, resource_id, row.version_id, row.last_updated, row.deleted, row.content
        )
        if stored.deleted:
            raise FhirError.gone(f"This {resource_type} was deleted.", stored.version_id)
        return stored

    def read_for_update(self, resource_type: str, resource_id: str) -> StoredResource:
        """The current version, to be changed (JSON Patch reads before it writes)."""
        return self.read(resource_type, resource_id)

    def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        self.flush()
        h = tables.history.c
        row = self.session.execute(
            select(h.last_updated, h.content, h.method).where(
                h.hospital_id == self.hospital_id,
                h.resource_type == resource_type,
                h.id == resource_id,
                h.version_id == version_id,
            )
        ).first()
        if row is None:
            raise FhirError.not_found(f"This {resource_type} has no such version.")
        if row.method == "DELETE":
            raise FhirError.gone(
                f"Version {version_id} of {resource_type}/{resource_id} is a deletion.", version_id
            )
        return StoredResource(
            resource_type, resource_id, version_id, as_utc(row.last_updated), False, row.content
        )

    def has_any(self, resource_type: str) -> bool:
        """Whether the hospital holds at least one current resource of the type."""
        self.flush()
        r = tables.resources.c
        query = select(r.id).where(
            r.hospital_id == self.hospital_id, r.resource_type == resource_type, r.deleted.is_(False)
        )
        return self.session.execute(query.limit(1)).first() is not None

    def exists(self, resource_type: str, resource_id: str) -> bool:
        state = self.current_version(resource_type, resource_id, lock=False)
        return state is not None and not state.deleted

    # -- writes -----------------------------------------------------------------------
    def current_version(
        self, resource_type: str, resource_id: str, *, lock: bool = True
    ) -> VersionState | None:
        """The resource's current version as this transaction knows it (locked for writing)."""
        key = (self.hospital_id, resource_type, resource_id)
        known = self._writes.known
        if key not in known:
            row = self._row(resource_type, resource_id, lock=lock)
            known[key] = None if row is None else VersionState(row.version_id, row.deleted)
        return known[key]

    def prefetch(self, keys: list[tuple[str, str]]) -> None:
        """Learn (and lock) the current versions of many resources in one query."""
        known = self._writes.known
        wanted = [(t, i) for t, i in dict.fromkeys(keys) if (self.hospital_id, t, i) not in known]
        if not wanted:
            return
        self.flush()
        begin_writing(self.session.connection())  # SQLite's FOR UPDATE: its write lock
        r = tables.resources.c
        by_type: dict[str, list[str]] = defaultdict(list)
        for resource_type, resource_id in wanted:
            by_type[resource_type].append(resource_id)
        # Rows are locked in one global order (type, then id), whatever order the Bundle names
        # them in: two transactions locking the same rows in opposite orders would deadlock.
        for resource_type in sorted(by_type):
            ids = sorted(by_type[resource_type])
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                rows = self.session.execute(
                    select(r.id, r.version_id, r.deleted)
                    .where(
                        r.hospital_id == self.hospital_id, r.resource_type == resource_type, r.id.in_(chunk)
                    )
                    .order_by(r.id)
                    .with_for_update()
                )
                found = {row.id: VersionState(row.version_id, row.deleted) for row in rows}
                for resource_id in chunk:
                    known[(self.hospital_id, resource_type, resource_id)] = found.get(resource_id)

    def _stamp(self, resource: dict, resource_id: str, version_id: int, moment: datetime) -> str:
        resource["id"] = resource_id
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version_id)
        meta["lastUpdated"] = format_instant(moment)
        resource["meta"] = meta
        return exact_json.dumps(resource).decode()

    def _write(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict | None,
        previous: VersionState | None,
        method: str,
        index: IndexValues | None = None,
    ) -> StoredResource:
        """Buffer one new version: its history row, current row and index rows (``index``, or
        what ``extract`` finds in the resource)."""
        key = (self.hospital_id, resource_type, resource_id)
        if key in self._writes.buffered:
            # Two versions of one resource in one flush would leave both versions' index rows.
            self.flush()
        writes = self._writes
        writes.buffered.add(key)
        version_id = previous.version_id + 1 if previous else 1
        moment = utcnow()
        content = self._stamp(resource, resource_id, version_id, moment) if resource is not None else None
        writes.history.append(
            {
                "hospital_id": self.hospital_id,
                "resource_type": resource_type,
                "id": resource_id,
                "version_id": version_id,
                "last_updated": moment,
                "method": method,
                "content": content,
            }
        )
        deleted = resource is None
        if previous is None:
            writes.inserted.append(
                {
                    "hospital_id": self.hospital_id,
                    "resource_type": resource_type,
                    "id": resource_id,
                    "version_id": version_id,
                    "last_updated": moment,
                    "deleted": deleted,
                    "content": content,
                    "_history_index": len(writes.history) - 1,
                }
            )
        else:
            writes.updated.append(
                {
                    "h": self.hospital_id,
                    "t": resource_type,
                    "i": resource_id,
                    "version_id": version_id,
                    "last_updated": moment,
                    "deleted": deleted,
                    "content": content,
                }
            )
            writes.cleared.append((self.hospital_id, resource_type, resource_id))
        if resource is not None:
            self._index(writes, resource_type, resource_id, index if index is not None else extract(resource))
        writes.known[(self.hospital_id, resource_type, resource_id)] = VersionState(version_id, deleted)
        writes.hand_off(self.session)
        return StoredResource(resource_type, resource_id, version_id, moment, deleted, content)

    def create(
        self,
        resource: dict,
        *,
        method: str = "POST",
        resource_id: str | None = None,
        index: IndexValues | None = None,
    ) -> StoredResource:
        """FHIR R4B http.html#create: a new id, version 1; ``index`` when the caller knows the
        resource's index values (the audit writer), else ``extract`` finds them."""
        resource_id = resource_id or new_id()
        self._writes.known.setdefault((self.hospital_id, resource["resourceType"], resource_id), None)
        return self._write(resource["resourceType"], resource_id, resource, None, method, index)

    def append(self, entries: list[tuple[dict, str, IndexValues]]) -> None:
        """Store new resources nobody else writes, each ``(resource, id, index values)``: the
        audit trail's, under fresh ids only its writer knows. Version 1 each, as ``create``
        stores it, but on PostgreSQL the rows go straight out by COPY, without the unit of
        work's bookkeeping (that cost the audit writer ~70 us an event); elsewhere ``create``."""
        if self.session.get_bind().dialect.name != "postgresql":
            for resource, resource_id, index in entries:
                self.create(resource, resource_id=resource_id, index=index)
            return
        self.flush()
        moment = utcnow()
        history, current, compartments = [], [], []
        index: dict[str, list[tuple]] = defaultdict(list)
        seqs = next_seqs(self.session, len(entries))
        for (resource, resource_id, values), seq in zip(entries, seqs, strict=True):
            resource_type = resource["resourceType"]
            content = self._stamp(resource, resource_id, 1, moment)
            # In the tables' column order (tests/fhir/test_storage_append.py holds them to create's).
            history.append((seq, self.hospital_id, resource_type, resource_id, 1, moment, "POST", content))
            current.append((self.hospital_id, resource_type, resource_id, 1, moment, False, seq, content))
            index_rows((self.hospital_id, resource_type, resource_id), values, index, compartments)
        bulk_insert(self.session, tables.history, history)
        bulk_insert(self.session, tables.resources, current)
        for kind, rows in index.items():
            bulk_insert(self.session, tables.INDEX_TABLES[kind], rows)
        bulk_insert(self.session, tables.compartments, compartments)

    def update(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict,
        *,
        if_match: int | None = None,
        method: str = "PUT",
    ) -> tuple[StoredResource, bool]:
        """FHIR R4B http.html#update; returns the new version and whether it was created."""
        previous = self.current_version(resource_type, resource_id)
        if previous is None:
            if if_match is not None:
                raise FhirError.precondition_failed(f"This {resource_type} does not exist.")
            return self._write(resource_type, resource_id, resource, None, method), True
        if if_match is not None and if_match != previous.version_id:
            raise FhirError.precondition_failed(
                f"This {resource_type} is at version {previous.version_id}, not {if_match}."
            )
        stored = self._write(resource_type, resource_id, resource, previous, method)
        return stored, previous.deleted

    def delete(self, resource_type: str, resource_id: str) -> StoredResource | None:
        """FHIR R4B http.html#delete: a new, empty version; None when nothing was there."""
        previous = self.current_version(resource_type, resource_id)
        if previous is None or previous.deleted:
            return None
        return self._write(resource_type, resource_id, None, previous, "DELETE")

    # -- index ------------------------------------------------------------------------
    def _index(
        self, writes: PendingWrites, resource_type: str, resource_id: str, values: IndexValues
    ) -> None:
        """Queue the resource's index rows, as tuples in each table's column order."""
        index_rows((self.hospital_id, resource_type, resource_id), values, writes.index, writes.compartments)

    # -- history ----------------------------------------------------------------------
    def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        within: HistoryRange = HistoryRange(),
        before_seq: int | None = None,
        count: int = 20,
        visible: Restriction | None = None,
    ) -> HistoryPage:
        """FHIR R4B http.html#history, newest first; ``visible`` narrows it per type."""
        self.flush()
        h = tables.history.c
        # A hospital's (or a type's) newest versions along its index (``history_walk``); one
        # resource's versions by its key, and a period's (``_since``, ``_at``) left to the planner:
        # ``ix_fhir_history_hospital_updated`` finds a recent period's few rows, where a walk by
        # ``seq`` would read the hospital's whole history to be sure there are no more.
        walk = not resource_id and within.since is None and within.current_until is None
        if walk:
            bounds, order = hospital_rows(self.hospital_id, resource_type, before_seq)
        else:
            bounds, order = [h.hospital_id == self.hospital_id], [h.seq.desc()]
            bounds += [h.seq < before_seq] if before_seq is not None else []
        query = select(h.seq, h.resource_type, h.id, h.version_id, h.last_updated, h.method, h.content).where(
            *bounds
        )
        if visible is not None:
            types = [resource_type] if resource_type else resource_types()
            query = query.where(restrict_mixed_types(visible, h.resource_type, h.id, types))
        if resource_type and not walk:
            query = query.where(h.resource_type == resource_type)
        if resource_id:
            query = query.where(h.id == resource_id)
        if within.since is not None:
            query = query.where(h.last_updated >= within.since)
        if within.current_until is not None:
            # current at some point in the period: written before its end, and not replaced
            # by a next version at or before its start
            following = tables.history.alias("following")
            f = following.c
            replaced = select(f.seq).where(
                f.hospital_id == h.hospital_id,
                f.resource_type == h.resource_type,
                f.id == h.id,
                f.version_id == h.version_id + 1,
                f.last_updated <= within.current_from,
            )
            query = query.where(h.last_updated < within.current_until, ~replaced.exists())
        rows = list(self.session.execute(query.order_by(*order).limit(count)))
        entries = [
            HistoryEntry(
                row.seq,
                StoredResource(
                    row.resource_type,
                    row.id,
                    row.version_id,
                    as_utc(row.last_updated),
                    row.method == "DELETE",
                    row.content,
                ),
                row.method,
            )
            for row in rows
        ]
        return HistoryPage(entries, rows[-1].seq if rows and len(rows) == count else None)
