"""One export job, run by a worker: each type's resources streamed into ndjson files.

On PostgreSQL the whole export reads one REPEATABLE READ snapshot through a server-side cursor,
``BATCH`` rows at a time: the files hold the store exactly as it was at ``transactionTime``,
and memory does not grow with the export. SQLite (the embedded default) cannot hold a read
transaction that long without stopping every writer, so there each type is read in keyset
pages of short transactions, leaving out resources created after the start.

A line is the stored JSON as served (compact: no line breaks), or its ``_elements`` subset.
Files hold at most ``FHIRGATE_EXPORT_FILE_LINES`` lines; each is recorded with the job when it is
complete, together with the renewal of the job's lease.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

import orjson
from flask import current_app
from sqlalchemy import String, any_, bindparam, false, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from app.extensions import db
from app.timeutil import as_utc, utcnow
from fhir import exact_json
from fhir.bulk import jobs as job_store
from fhir.bulk.kickoff import ExportRequest
from fhir.bulk.storage import ExportStorage
from fhir.errors import Issue, operation_outcome
from fhir.http import base_url
from fhir.policy import AccessPolicy
from fhir.scoped import ScopedRepository
from fhir.search.builder import SearchBuilder
from fhir.search.request import parse_search
from fhir.storage import tables
from fhir.storage.history_walk import newest_seq
from fhir.storage.sql import SqlRepository
from fhir.subsetting import subset
from oauth import Principal

BATCH = 2000
# The export's transactionTime: its snapshot's start, or earlier if another transaction began
# before it and is still open. A resource's lastUpdated is set as its transaction writes, before
# it commits; a transaction open at the snapshot is not in the export, so the time must be no
# later than its start, or the next export's _since would pass its resources by.
_TRANSACTION_TIME = (
    "SELECT least(now(), (SELECT min(xact_start) FROM pg_stat_activity"
    " WHERE datname = current_database() AND backend_type = 'client backend'"
    " AND xact_start IS NOT NULL AND pid <> pg_backend_pid()))"
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    file_lines: int
    lease: timedelta
    retention: timedelta

    @staticmethod
    def from_config(config) -> RunSettings:
        return RunSettings(
            config["FHIRGATE_EXPORT_FILE_LINES"],
            timedelta(seconds=config["FHIRGATE_EXPORT_LEASE_S"]),
            timedelta(seconds=config["FHIRGATE_EXPORT_RETENTION_S"]),
        )


class JobLost(Exception):
    """The job is no longer this attempt's: cancelled, or taken over by another worker."""


class Stopping(Exception):
    """The worker was asked to stop: the job goes back to the queue."""


def file_name(attempt: int, label: str, number: int) -> str:
    # The attempt keeps a stale worker's late file from ever replacing a live one's.
    return f"{attempt}-{label}-{number}.ndjson"


class _Export:
    def __init__(self, claim: job_store.Claim, storage: ExportStorage, settings: RunSettings,
                 stop: threading.Event):  # fmt: skip
        self.claim = claim
        self.storage = storage
        self.settings = settings
        self.stop = stop
        self.exported = 0
        self.position = 0
        self.progress = "Starting"
        self.errors: list[dict] = []
        self.heartbeat: _Heartbeat | None = None

    # -- the job's record ------------------------------------------------------------------
    def renew(self, progress: str, *, force: bool = False) -> None:
        """Report progress (the heartbeat sends it); stop if asked to or if the job was lost.
        ``force``: renew the lease now, from this thread."""
        self.progress = progress
        if self.stop.is_set():
            raise Stopping
        if self.heartbeat is not None and self.heartbeat.lost:
            raise JobLost
        if force:
            with db.engine.begin() as connection:
                if not job_store.renew(connection, self.claim, self.settings.lease, self.exported, progress):
                    raise JobLost

    def record(self, name: str, kind: str, resource_type: str, count: int, size: int) -> None:
        self.position += 1
        with db.engine.begin() as connection:
            recorded = job_store.add_file(
                connection, self.claim, name=name, position=self.position, kind=kind,
                resource_type=resource_type, count=count, size=size, lease=self.settings.lease,
                exported=self.exported,
            )  # fmt: skip
        if not recorded:
            raise JobLost

    # -- writing ---------------------------------------------------------------------------
    def write_type(self, resource_type: str, pages, elements: tuple[str, ...]) -> None:
        number = count = size = 0
        with contextlib.ExitStack() as stack:
            handle = name = None
            for page in pages:
                for content in page:
                    if handle is None:
                        number += 1
                        name = file_name(self.claim.attempt, resource_type, number)
                        handle = stack.enter_context(self.storage.writer(self.claim.id, name))
                        count = size = 0
                    line = _line(content, elements)
                    handle.write(line)
                    count += 1
                    size += len(line)
                    self.exported += 1
                    if count >= self.settings.file_lines:
                        stack.close()
                        self.record(name, "output", resource_type, count, size)
                        handle = None
                self.renew(f"{resource_type}: {self.exported:,} resources written so far")
            if handle is not None:
                stack.close()
                self.record(name, "output", resource_type, count, size)

    def write_errors(self) -> None:
        if not self.errors:
            return
        name = file_name(self.claim.attempt, "OperationOutcome", 1)
        lines = b"".join(orjson.dumps(outcome) + b"\n" for outcome in self.errors)
        with self.storage.writer(self.claim.id, name) as handle:
            handle.write(lines)
        self.record(name, "error", "OperationOutcome", len(self.errors), len(lines))


class _Heartbeat(threading.Thread):
    """Renews the job's lease every quarter of it, whatever the export is doing meanwhile (the
    first rows of a large type may take a while): the lease never runs out under a live worker.
    A renewal refused (cancelled, or taken over) marks the job lost; the export stops at its
    next batch."""

    def __init__(self, export: _Export, engine) -> None:
        super().__init__(name=f"export-heartbeat-{export.claim.id}", daemon=True)
        self.export = export
        self.engine = engine  # this thread has no application context
        self.done = threading.Event()
        self.lost = False

    def run(self) -> None:
        export = self.export
        lease = export.settings.lease
        while not self.done.wait(lease.total_seconds() / 4):
            try:
                with self.engine.begin() as connection:
                    if not job_store.renew(connection, export.claim, lease, export.exported, export.progress):
                        self.lost = True
                        return
            except Exception as error:  # noqa: BLE001 - the database away for a moment: try again
                log.warning("export %s: lease renewal failed (%s)", export.claim.id, type(error).__name__)


def _line(content: str, elements: tuple[str, ...]) -> bytes:
    if elements:
        return exact_json.dumps(subset(exact_json.loads(content), None, elements)) + b"\n"
    if "\n" in content:  # never stored so; kept to one line whatever happens
        return exact_json.dumps(exact_json.loads(content)) + b"\n"
    return content.encode() + b"\n"


def run_job(
    claim: job_store.Claim, storage: ExportStorage, settings: RunSettings, stop: threading.Event
) -> None:
    """Run the claimed job to its end: completed, failed, given back (``Stopping``) or lost."""
    with db.engine.connect() as connection:
        job = job_store.find_job(connection, claim.hospital_id, claim.id)
    export = ExportRequest.from_json(orjson.loads(job.parameters))
    principal = Principal(
        client_id=job.client_id,
        kind=job.client_kind,
        hospital_id=job.hospital_id,
        patient_id=job.patient_id,
        scopes=tuple(job.scopes.split()),
        jti="bulk-export",
        expires_at=0,
        smart_context=job.smart_context,
        subject=job.subject,
    )
    scoped = ScopedRepository(
        SqlRepository(
            db.session, job.hospital_id, client_id=job.client_id, base_url=base_url(job.hospital_id)
        ),
        AccessPolicy(principal),
    )
    builder = SearchBuilder(job.hospital_id, base_url(job.hospital_id), scoped.search_restriction())
    run = _Export(claim, storage, settings, stop)
    storage.delete_job(claim.id)  # what an earlier attempt left
    run.renew("Starting", force=True)
    run.heartbeat = _Heartbeat(run, db.engine)
    run.heartbeat.start()
    try:
        if db.engine.dialect.name == "postgresql":
            transaction_time = _export_from_snapshot(run, job, export, builder)
        else:
            transaction_time = _export_in_pages(run, job, export, builder)
        run.write_errors()
    finally:
        run.heartbeat.done.set()
        run.heartbeat.join(timeout=30)
    with db.engine.begin() as connection:
        if not job_store.complete(connection, claim, transaction_time, run.exported, settings.retention):
            raise JobLost


def _export_from_snapshot(run: _Export, job, export: ExportRequest, builder: SearchBuilder) -> datetime:
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            connection.execute(text("SET LOCAL statement_timeout = 0"))  # a FETCH may wait on a slow disk
            transaction_time = as_utc(connection.execute(text(_TRANSACTION_TIME)).scalar_one())
            patients = _patients(run, connection, job, export, builder)
            for resource_type in export.types:
                query = _type_query(job, export, builder, resource_type, patients)
                rows = connection.execution_options(yield_per=BATCH).execute(query)
                pages = ([content for (_, content) in page] for page in rows.partitions())
                run.write_type(resource_type, pages, tuple(export.elements.get(resource_type, ())))
    return transaction_time


def _export_in_pages(run: _Export, job, export: ExportRequest, builder: SearchBuilder) -> datetime:
    transaction_time = utcnow()
    with db.engine.connect() as connection:
        newest = connection.execute(newest_seq(job.hospital_id)).scalar()
        patients = _patients(run, connection, job, export, builder)
    r = tables.resources.c

    def pages(resource_type: str):
        query = _type_query(job, export, builder, resource_type, patients).where(
            r.created_seq <= (newest or 0)
        )
        after = ""
        while True:
            with db.engine.connect() as connection:
                page = connection.execute(query.where(r.id > after).limit(BATCH)).all()
            if not page:
                return
            after = page[-1].id
            yield [content for (_, content) in page]

    for resource_type in export.types:
        run.write_type(resource_type, pages(resource_type), tuple(export.elements.get(resource_type, ())))
    return transaction_time


def _type_query(job, export: ExportRequest, builder: SearchBuilder, resource_type: str, patients):
    r = tables.resources.c
    clauses = [
        r.hospital_id == job.hospital_id,
        r.resource_type == resource_type,
        r.deleted == false(),
        *builder.restriction(resource_type, r.id),
    ]
    if export.since:
        clauses.append(r.last_updated > datetime.fromisoformat(export.since))
    filters = export.type_filters.get(resource_type)
    if filters:
        queries = [
            parse_search(resource_type, parse_qsl(raw, keep_blank_values=True), lenient=True)
            for raw in filters
        ]
        clauses.append(or_(*(builder.criteria(query) for query in queries)))
    if job.level != "system":
        clauses.append(_in_compartments(job.hospital_id, resource_type, r.id, patients))
    return select(r.id, r.content).where(*clauses).order_by(r.id)


def _in_compartments(hospital_id: str, resource_type: str, id_column, patients: list[str] | None):
    """Resources of the chosen patients (None: of any patient) — their Patient, or a resource in
    their compartment."""
    if resource_type == "Patient":
        return _among(id_column, patients) if patients is not None else id_column == id_column
    c = tables.compartments.c
    members = select(c.resource_id).where(c.hospital_id == hospital_id, c.resource_type == resource_type)
    if patients is not None:
        members = members.where(_among(c.patient_id, patients))
    return id_column.in_(members)


def _among(column, values: list[str]):
    """``column IN values``: on PostgreSQL one array parameter, however large the list (a
    Group of 100,000 members would pass PostgreSQL's 65,535 parameters a statement as an IN list)."""
    if db.engine.dialect.name == "postgresql":
        return column == any_(bindparam("among", value=list(values), type_=ARRAY(String), unique=True))
    return column.in_(values)


def _patients(run: _Export, connection: Connection, job, export: ExportRequest, builder: SearchBuilder):
    """The patients whose records the export holds, None for all: a Group's members (what the
    ``patient`` parameter names of them), or the ``patient`` parameter's."""
    if job.level != "group":
        return export.patients
    r = tables.resources.c
    found = connection.execute(
        select(r.content).where(
            r.hospital_id == job.hospital_id,
            r.resource_type == "Group",
            r.id == job.group_id,
            r.deleted == false(),
            *builder.restriction("Group", r.id),
        )
    ).first()
    if found is None:
        raise GroupGone
    members = []
    prefix = base_url(job.hospital_id) + "/"
    for member in orjson.loads(found.content).get("member") or []:
        if member.get("inactive"):
            continue
        reference = ((member.get("entity") or {}).get("reference") or "").removeprefix(prefix)
        kind, _, member_id = reference.partition("/")
        if kind == "Patient" and member_id and "/" not in member_id:
            members.append(member_id)
        else:
            message = (
                f"Group/{job.group_id} member {reference[:100]!r} is not a Patient of this server; left out."
            )
            run.errors.append(operation_outcome([Issue("not-supported", message, severity="warning")]))
    if export.patients is not None:
        members = [member for member in members if member in set(export.patients)]
    return list(dict.fromkeys(members))


class GroupGone(Exception):
    """The Group of a group export was deleted (or put out of reach) before the export ran."""


def current_settings() -> RunSettings:
    return RunSettings.from_config(current_app.config)
