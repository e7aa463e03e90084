"""Time limits: every statement, and every request as a whole.

* Every PostgreSQL connection the app opens — the pool's and ``app.direct_reads``' — starts
  with ``statement_timeout`` set in its startup packet (``FHIRGATE_STATEMENT_TIMEOUT_MS``):
  no statement runs without it (a conditional lookup, a search, an include), and it costs no
  round trip. Migrations lift it on their own connection (an index build may take longer).
* Every request has a total budget (``FHIRGATE_REQUEST_TIME_LIMIT_S``): a statement timeout
  alone lets a request of many statements run for their sum. No statement starts once the
  budget is spent (``TimeLimitExceeded``), and a watchdog thread per process cancels the
  statement a request is running on its pool connections when its budget runs out (psycopg's
  ``cancel_safe``, sqlite3's ``interrupt``; again each second while it goes on). Python work
  between statements ends at the next statement; SQLite's wait for a lock cannot be
  interrupted (its 5 s busy timeout bounds it).

A request pays for this with a dictionary entry per request and per connection checkout, and
a clock read and a counter per statement. The watchdog wakes on its own timer only: at the
soonest deadline, or a whole budget later when no request is in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.25
RECANCEL_S = 1.0
CANCEL_TIMEOUT_S = 0.5  # the cancel request's own connection; the watchdog holds its lock meanwhile
QUERY_CANCELED = "57014"  # PostgreSQL Appendix A: a statement timeout, or a cancel request
_SQLITE_INTERRUPT = 9


class TimeLimitExceeded(Exception):
    """The request has spent its time budget; the surface's error handler answers it."""


def statement_timeout_options(config: dict) -> dict:
    """``SQLALCHEMY_ENGINE_OPTIONS`` giving every PostgreSQL connection its statement timeout."""
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if str(config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        connect_args = dict(options.get("connect_args") or {})
        timeout = int(config["FHIRGATE_STATEMENT_TIMEOUT_MS"])
        connect_args["options"] = f"{connect_args.get('options', '')} -c statement_timeout={timeout}".strip()
        options["connect_args"] = connect_args
    return options


def was_cancelled(error: BaseException) -> bool:
    """Whether a database error is a statement stopped by a time limit (by its code, whatever
    language the server's messages are in)."""
    if not isinstance(error, OperationalError):
        return False
    driver_error = error.orig
    if getattr(driver_error, "sqlstate", None) == QUERY_CANCELED:
        return True
    code = getattr(driver_error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == _SQLITE_INTERRUPT


@dataclass
class _Budget:
    deadline: float
    connections: list = field(default_factory=list)  # DBAPI connections checked out meanwhile
    running: int = 0  # statements under way (a cancel with none under way stops nothing)
    cancelled_at: float | None = None


class Deadlines:
    """Each request thread's deadline and connections, and the watchdog that enforces them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._budgets: dict[int, _Budget] = {}
        self._longest = 0.0  # the longest budget given: how long the watchdog may sleep when idle
        self._watchdog: tuple[int, threading.Thread] | None = None

    # -- the request's side -----------------------------------------------------------
    def start(self, seconds: float) -> None:
        budget = _Budget(time.monotonic() + seconds)
        with self._lock:
            self._budgets[threading.get_ident()] = budget
            self._longest = max(self._longest, seconds)
            self._ensure_watchdog()

    def end(self) -> None:
        with self._lock:
            self._budgets.pop(threading.get_ident(), None)

    def check(self) -> None:
        """Before a statement: refuse to start one past the deadline."""
        budget = self._budgets.get(threading.get_ident())
        if budget is not None:
            if time.monotonic() >= budget.deadline:
                raise TimeLimitExceeded()
            budget.running += 1

    def done(self) -> None:
        """After a statement, or its failure."""
        budget = self._budgets.get(threading.get_ident())
        if budget is not None and budget.running:
            budget.running -= 1

    def attach(self, connection) -> None:
        budget = self._budgets.get(threading.get_ident())
        if budget is not None:
            with self._lock:
                budget.connections.append(connection)

    def detach(self, connection) -> None:
        budget = self._budgets.get(threading.get_ident())
        if budget is not None:
            with self._lock, contextlib.suppress(ValueError):
                budget.connections.remove(connection)

    # -- the watchdog -----------------------------------------------------------------
    def _ensure_watchdog(self) -> None:
        """Start the watchdog in this process (a forked worker has none of its parent's)."""
        if self._watchdog is None or self._watchdog[0] != os.getpid():
            thread = threading.Thread(target=self._watch, name="fhirgate-deadlines", daemon=True)
            self._watchdog = (os.getpid(), thread)
            thread.start()

    def _watch(self) -> None:
        """Cancel what runs past its deadline. Nothing wakes this thread but its own timer (a
        wake-up per request cost as much as a small request): with no request in flight it
        sleeps a whole budget, so that a request starting meanwhile has its deadline after."""
        while True:
            with self._lock:
                now = time.monotonic()
                for budget in self._budgets.values():
                    # Again every interval while the request goes on: a statement it started
                    # just before the deadline would otherwise escape the first cancel.
                    if (
                        budget.deadline <= now
                        and budget.running
                        and (budget.cancelled_at is None or now - budget.cancelled_at >= RECANCEL_S)
                    ):
                        budget.cancelled_at = now
                        for connection in budget.connections:
                            _cancel(connection)
                soonest = min((b.deadline for b in self._budgets.values()), default=now + self._longest)
            time.sleep(max(WATCH_INTERVAL_S if soonest <= now else soonest - now, 0.01))


def _cancel(connection) -> None:
    """Stop the statement ``connection`` runs, if any. Under the lock, so that the connection
    cannot go back to the pool (``detach``) and serve another request meanwhile."""
    try:
        if hasattr(connection, "cancel_safe"):  # psycopg 3
            connection.cancel_safe(timeout=CANCEL_TIMEOUT_S)
        elif hasattr(connection, "interrupt"):  # sqlite3
            connection.interrupt()
    except Exception as error:  # noqa: BLE001 - a connection already gone has nothing to stop
        log.warning("could not cancel a statement past its deadline (%s)", type(error).__name__)


def init_time_limits(app: Flask, engine: Engine) -> None:
    """Budget every request of ``app``; watch the statements it runs on ``engine``."""
    deadlines = Deadlines()
    app.extensions["fhirgate_deadlines"] = deadlines

    @app.before_request
    def _start_budget():
        deadlines.start(current_app.config["FHIRGATE_REQUEST_TIME_LIMIT_S"])

    @app.teardown_request
    def _end_budget(_error=None):
        deadlines.end()

    event.listen(engine, "checkout", lambda connection, _record, _proxy: deadlines.attach(connection))
    event.listen(engine, "checkin", lambda connection, _record: deadlines.detach(connection))
    event.listen(engine, "before_cursor_execute", lambda *_args: deadlines.check())
    event.listen(engine, "after_cursor_execute", lambda *_args: deadlines.done())
    event.listen(engine, "handle_error", lambda _context: deadlines.done())
