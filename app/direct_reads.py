"""Single-statement reads of committed data over libpq, beside the SQLAlchemy pool.

The hot paths (the revocation epoch of every request, a FHIR read's one row) are one
prepared statement each. Through a session they cost a pool checkout and return (with its
reset), SQLAlchemy's execution machinery and psycopg's cursor: ~0.3 ms of CPU a statement.
Here each thread keeps one autocommit connection and runs named prepared statements
through libpq directly: ~20 us of client CPU.

``start`` sends a statement and returns a function that waits for its rows, so that a
caller can work while the database answers (waiting costs the worker more CPU than the
query itself: being switched out and back). A read that fails answers ``None``, logged by
error type only, and the connection is dropped; the caller then goes the ordinary way,
which has the pool's reconnect handling; for ``REST_AFTER_FAILURE_S`` the process then reads
that way only, so that a database in trouble is not met with a reconnect per request. A
statement cancelled by its time limit answers None too, but keeps its connection and rests
nothing: the search fast path gives its slow searches a short limit on purpose.
Each thread holds one connection beside the pool's. PostgreSQL only (``available``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Sequence

import psycopg
from flask import Flask, current_app
from psycopg import pq
from sqlalchemy.engine import Engine

CONNECT_TIMEOUT_S = 3
ANSWER_TIMEOUT_S = 3
REST_AFTER_FAILURE_S = 5  # after a failure, this process reads the ordinary way for a while

QUERY_CANCELED = b"57014"  # statement_timeout
Rows = list[tuple[str | None, ...]]  # libpq's text format: the caller converts
log = logging.getLogger(__name__)


class DirectReads:
    def __init__(self, engine: Engine, statement_timeout_ms: int = 10_000, options: str = "") -> None:
        self._engine = engine
        self._options = f"-c DateStyle=ISO -c TimeZone=UTC -c statement_timeout={int(statement_timeout_ms)}"
        if options:
            self._options += " " + options
        self.available = engine.dialect.name == "postgresql"
        self._local = threading.local()
        self._resting_until = 0.0

    def ready(self) -> bool:
        """Whether a statement would be sent now (PostgreSQL, and not resting after a failure)."""
        return self.available and time.monotonic() >= self._resting_until

    def wake(self) -> None:
        """Use direct reads again at once, without waiting out a failure's rest (tests)."""
        self._resting_until = 0.0

    def run(self, name: str, sql: str, params: Sequence[str] = ()) -> Rows | None:
        """The rows of prepared statement ``name`` (``sql`` with $1, $2…), or None if it failed."""
        return self.start(name, sql, params)()

    def start(self, name: str, sql: str, params: Sequence[str] = ()) -> Callable[[], Rows | None]:
        """Send the statement now; the function returned waits for its rows (call it exactly
        once, before this thread's next ``start``) and answers as ``run`` does."""
        if time.monotonic() < self._resting_until:
            return lambda: None  # failed a moment ago: the ordinary path, without a retry storm
        try:
            connection, prepared = self._connection()
            pgconn = connection.pgconn
            key = name.encode()
            if key not in prepared:
                result = pgconn.prepare(key, sql.encode())
                if result.error_field(pq.DiagnosticField.SQLSTATE) == QUERY_CANCELED:
                    return lambda: None  # its time limit (a lock held long): nothing wrong here
                if result.status != pq.ExecStatus.COMMAND_OK:
                    raise psycopg.OperationalError(f"preparing {name} failed")
                prepared.add(key)
            pgconn.send_query_prepared(key, [p.encode() for p in params] if params else None)
            while pgconn.flush():  # a non-blocking connection may keep part of the message
                select.select([], [pgconn.socket], [], ANSWER_TIMEOUT_S)
        except Exception as error:  # noqa: BLE001 - any failure means: take the ordinary path
            self._failed(name, error)
            return lambda: None
        return lambda: self._rows(name, pgconn)

    def _rows(self, name: str, pgconn: pq.abc.PGconn) -> Rows | None:
        try:
            # Wait in select(), which lets other threads run, then collect without blocking.
            pgconn.consume_input()
            while pgconn.is_busy():
                if not select.select([pgconn.socket], [], [], ANSWER_TIMEOUT_S)[0]:
                    raise psycopg.OperationalError("no answer in time")
                pgconn.consume_input()
            result = pgconn.get_result()
            while pgconn.get_result() is not None:  # libpq's end-of-results marker
                pass
            if result is not None and result.error_field(pq.DiagnosticField.SQLSTATE) == QUERY_CANCELED:
                return None  # its time limit: the connection is fine, the caller goes the other way
            if result is None or result.status != pq.ExecStatus.TUPLES_OK:
                raise psycopg.OperationalError("the statement failed")
            return [
                tuple(None if value is None else value.decode() for value in
                      (result.get_value(row, column) for column in range(result.nfields)))
                for row in range(result.ntuples)
            ]  # fmt: skip
        except Exception as error:  # noqa: BLE001 - any failure means: take the ordinary path
            self._failed(name, error)
            return None

    def _connection(self) -> tuple[psycopg.Connection, set[bytes]]:
        held = getattr(self._local, "held", None)
        # A connection inherited through fork belongs to the parent: never share it.
        if held is not None and held[0] == os.getpid() and not held[1].closed:
            return held[1], held[2]
        url = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        # Text values are parsed here: fix the formats they come in; every statement is bounded.
        connection = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            options=self._options,
        )
        self._local.held = (os.getpid(), connection, set())
        return connection, self._local.held[2]

    def _failed(self, name: str, error: Exception) -> None:
        log.warning("direct read %s failed (%s): taking the ordinary path", name, type(error).__name__)
        self._resting_until = time.monotonic() + REST_AFTER_FAILURE_S
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None and held[0] == os.getpid():
            with contextlib.suppress(Exception):  # already broken: nothing to tell
                held[1].close()


# The search fast path's statements fix their own join order (fhir/search_fast_path.py), so one
# generic plan serves every value: planning each search for its values cost more than running it.
GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"


def init_direct_reads(
    app: Flask, engine: Engine, statement_timeout_ms: int = 10_000, quick_search_ms: int = 50
) -> None:
    app.extensions["fhirgate_direct_reads"] = DirectReads(engine, statement_timeout_ms)
    # Searches have connections of their own: one plan per statement, and a short time limit
    # (``FHIRGATE_QUICK_SEARCH_MS``): the searches answered beneath Flask are the quick ones
    # (fhir/search_fast_path.py); one that runs longer is cancelled and goes to the view, which
    # runs it in the worker's heavy slot.
    quick = min(quick_search_ms, statement_timeout_ms)
    app.extensions["fhirgate_direct_searches"] = DirectReads(engine, quick, GENERIC_PLANS)


def direct_reads() -> DirectReads:
    return current_app.extensions["fhirgate_direct_reads"]
