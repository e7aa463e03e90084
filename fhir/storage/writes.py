"""Write-behind for the FHIR store: a unit of work's rows, flushed in bulk.

A transaction Bundle of 500 resources would otherwise cost some 4,000 round trips to the
database; buffered, it costs about a dozen bulk statements. The buffer lives on the
SQLAlchemy session: it is flushed before any read of the store, before ``commit`` and at
the end of a savepoint, and dropped by a rollback, so callers see ordinary transactional
behaviour.

On PostgreSQL a large unit of work does not wait for the end: once enough new resources are
buffered, their rows go to the server by COPY from a background thread on the same connection
while the worker prepares the next ones (the server and the worker then use two cores). The
worker touches the connection again only after that COPY has finished: every statement, commit,
rollback and savepoint on the connection first waits for it (engine events below).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

import psycopg
from sqlalchemy import DateTime, Engine, bindparam, delete, event, insert, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhir.errors import CONFLICT, FhirError, Issue
from fhir.storage import tables

_KEY = "fhir_pending_writes"
_IN_FLIGHT = "fhir_copy_in_flight"  # in the pooled connection's info: the background COPY, if any
_CHUNK = 500
# New resources buffered before their rows leave early: large enough to amortize a round trip
# and a thread hand-off, small enough that a 500-entry Bundle overlaps most of its COPY work.
HAND_OFF_RESOURCES = 100
_CONFLICT = "Another request changed the same resource at the same time; retry."


class WriteConflict(FhirError):
    """409: a unique key of the store (a resource's version, a new id) was taken by another
    transaction meanwhile. Running the request again, on what that one committed, may succeed."""

    def __init__(self):
        super().__init__(409, [Issue(CONFLICT, _CONFLICT)])


@dataclass
class VersionState:
    version_id: int
    deleted: bool


@dataclass
class PendingWrites:
    history: list[dict] = field(default_factory=list)
    inserted: list[dict] = field(default_factory=list)  # new fhir_resources rows; created_seq set at flush
    updated: list[dict] = field(default_factory=list)
    cleared: list[tuple[str, str, str]] = field(default_factory=list)  # (hospital, type, id) whose index goes
    # Index and compartment rows as tuples in their tables' column order.
    index: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    compartments: list[tuple] = field(default_factory=list)
    # Resources with a version in the buffer: a second write of one flushes the first.
    buffered: set[tuple[str, str, str]] = field(default_factory=set)
    # What this transaction knows of each resource's current state: (hospital, type, id) → state.
    known: dict[tuple[str, str, str], VersionState | None] = field(default_factory=dict)

    # Rows of this unit of work are on their way by a background COPY.
    copying: bool = False

    def __bool__(self) -> bool:
        return bool(self.history or self.cleared or self.copying)

    def flush(self, session: Session) -> None:
        if not self:
            return
        try:
            self._flush(session)
        except (IntegrityError, psycopg.IntegrityError):
            raise WriteConflict() from None
        finally:
            self._reset()

    def _reset(self) -> None:
        self.history, self.inserted, self.updated, self.cleared = [], [], [], []
        self.buffered = set()
        self.index, self.compartments = defaultdict(list), []

    def hand_off(self, session: Session) -> None:
        """On PostgreSQL, start COPYing the buffered new resources in the background.

        Only pure inserts leave early: an update's old index rows must be deleted before its
        new ones arrive, so a buffer holding updates waits for the ordinary flush.
        """
        if len(self.inserted) < HAND_OFF_RESOURCES or self.cleared or self.updated:
            return
        connection = session.connection()
        if connection.dialect.name != "postgresql":
            return
        try:
            self.copying = False
            _finish_copy(connection.info)  # one COPY in flight at a time
            self._assign_seqs(session)
        except (IntegrityError, psycopg.IntegrityError):
            self._reset()
            raise WriteConflict() from None
        batches = [
            (tables.history, _in_key_order(tables.history, self.history)),
            (tables.resources, _in_key_order(tables.resources, self.inserted)),
            *((tables.INDEX_TABLES[kind], rows) for kind, rows in self.index.items()),
            (tables.compartments, self.compartments),
        ]
        self._reset()
        copy = _BackgroundCopy(connection.connection.dbapi_connection, batches)
        connection.info[_IN_FLIGHT] = copy
        self.copying = True
        copy.start()

    def _assign_seqs(self, session: Session) -> None:
        """PostgreSQL: take the history sequence numbers up front, so rows can stream by COPY."""
        seqs = next_seqs(session, len(self.history))
        for row, seq in zip(self.history, seqs, strict=True):
            row["seq"] = seq
        for row in self.inserted:
            row["created_seq"] = seqs[row.pop("_history_index")]

    def _flush(self, session: Session) -> None:
        if self.copying:
            self.copying = False
            _finish_copy(session.connection().info)
        if self.cleared:
            # Rows are locked in one order, (hospital, type, id), by every writer: two
            # transactions taking the same locks in opposite orders would deadlock.
            cleared = sorted(self.cleared)
            for table in (*tables.INDEX_TABLES.values(), tables.compartments):
                c = table.c
                for start in range(0, len(cleared), _CHUNK):
                    chunk = cleared[start : start + _CHUNK]
                    # One list of ids per hospital and type: a list of (type, id) pairs became an
                    # OR of ANDs, ~50 ms to plan at 500 pairs, which a planner with a table's stale
                    # statistics (a large load under way) ran as a scan of the hospital's rows.
                    owners = defaultdict(list)
                    for hospital_id, resource_type, resource_id in chunk:
                        owners[(hospital_id, resource_type)].append(resource_id)
                    for (hospital_id, resource_type), ids in owners.items():
                        owned = (c.hospital_id == hospital_id, c.resource_type == resource_type)
                        session.execute(delete(table).where(*owned, c.resource_id.in_(ids)))
        postgres = session.connection().dialect.name == "postgresql"
        if self.history:
            if postgres:
                self._assign_seqs(session)
                bulk_insert(session, tables.history, _in_key_order(tables.history, self.history))
            else:
                seqs = (
                    session.execute(
                        insert(tables.history).returning(tables.history.c.seq, sort_by_parameter_order=True),
                        self.history,
                    )
                    .scalars()
                    .all()
                )
                for row in self.inserted:
                    row["created_seq"] = seqs[row.pop("_history_index")]
        if self.inserted:
            bulk_insert(session, tables.resources, _in_key_order(tables.resources, self.inserted))
        if self.updated:
            r = tables.resources.c
            session.execute(
                update(tables.resources)
                .where(
                    r.hospital_id == bindparam("h"), r.resource_type == bindparam("t"), r.id == bindparam("i")
                )
                .values(
                    version_id=bindparam("version_id"),
                    last_updated=bindparam("last_updated"),
                    deleted=bindparam("deleted"),
                    content=bindparam("content"),
                )
                .execution_options(synchronize_session=False),
                sorted(self.updated, key=lambda row: (row["h"], row["t"], row["i"])),
            )
        for kind, rows in self.index.items():
            bulk_insert(session, tables.INDEX_TABLES[kind], rows)
        bulk_insert(session, tables.compartments, self.compartments)


_NEXT_SEQS = text("SELECT nextval(pg_get_serial_sequence('fhir_history', 'seq')) FROM generate_series(1, :n)")


def next_seqs(session: Session, count: int) -> list[int]:
    """PostgreSQL: ``count`` new ``fhir_history`` sequence numbers, ascending."""
    return sorted(session.execute(_NEXT_SEQS, {"n": count}).scalars().all())


def _as_tuples(table, rows: list[dict]) -> list[tuple]:
    columns = [column.name for column in table.columns]
    return [tuple(row.get(name) for name in columns) for row in rows]


def _in_key_order(table, rows: list[dict]) -> list[tuple]:
    """Rows of new resources as tuples, ordered by (hospital, type, id): the unique keys two
    transactions creating the same resources insert are then taken in the same order (the
    history's sequence numbers, given before, keep the processing order)."""
    at = [column.name for column in table.columns].index("hospital_id")  # type and id follow
    return sorted(_as_tuples(table, rows), key=lambda row: row[at : at + 3])


def bulk_insert(session: Session, table, rows: list[tuple]) -> None:
    """Insert rows given in column order: PostgreSQL's COPY (one stream), else executemany."""
    if not rows:
        return
    connection = session.connection()
    columns = [column.name for column in table.columns]
    if connection.dialect.name != "postgresql":
        session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    _copy(connection.connection.dbapi_connection.cursor(), table, rows)


def _copy(cursor, table, rows: list[tuple]) -> None:
    columns = ", ".join(column.name for column in table.columns)
    moments = [i for i, column in enumerate(table.columns) if isinstance(column.type, DateTime)]
    # write_row formats in psycopg's C extension: about four times faster than Python string work,
    # except for datetimes (~4 us each); their ISO text, with its UTC offset, costs ~0.5 us.
    with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
        if not moments:
            for row in rows:
                copy.write_row(row)
            return
        for row in rows:
            values = list(row)
            for i in moments:
                values[i] = values[i] and values[i].isoformat()
            copy.write_row(values)


class _BackgroundCopy(threading.Thread):
    """COPY batches of rows on a connection the worker leaves alone until ``join``."""

    def __init__(self, dbapi_connection, batches: list[tuple]):
        super().__init__(name="fhir-copy", daemon=True)
        self.dbapi_connection = dbapi_connection
        self.batches = batches
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            cursor = self.dbapi_connection.cursor()
            for table, rows in self.batches:
                if rows:
                    _copy(cursor, table, rows)
        except BaseException as error:  # noqa: BLE001 — handed to the worker at join
            self.error = error
        finally:
            self.batches = []


def _finish_copy(info: dict, *, reraise: bool = True) -> None:
    """Wait for the connection's background COPY, if any; raise its error."""
    copy = info.pop(_IN_FLIGHT, None)
    if copy is None:
        return
    copy.join()
    if copy.error is not None and reraise:
        raise copy.error


@event.listens_for(Engine, "before_cursor_execute")
def _wait_before_statement(conn, cursor, statement, parameters, context, executemany) -> None:
    _finish_copy(conn.info)


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "savepoint")
@event.listens_for(Engine, "release_savepoint")
def _wait_before_commit(conn, *args) -> None:
    _finish_copy(conn.info)


@event.listens_for(Engine, "rollback")
@event.listens_for(Engine, "rollback_savepoint")
def _wait_before_rollback(conn, *args) -> None:
    _finish_copy(conn.info, reraise=False)  # the work is being thrown away anyway


def pending(session: Session) -> PendingWrites:
    writes = session.info.get(_KEY)
    if writes is None:
        writes = session.info[_KEY] = PendingWrites()
    return writes


def flush_pending(session: Session) -> None:
    writes = session.info.get(_KEY)
    if writes:
        writes.flush(session)


def discard_pending(session: Session) -> None:
    """Roll back and forget the writes buffered but not yet sent. A session that has sent
    nothing yet has no transaction to roll back, and SQLAlchemy then calls no ``after_rollback``
    hook: without this, what a failed Bundle buffered would go out with the next commit."""
    session.rollback()
    session.info.pop(_KEY, None)


@event.listens_for(Session, "before_commit")
def _flush_before_commit(session: Session) -> None:
    flush_pending(session)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_KEY, None)
