"""Every statement a request runs is bounded, and so is the request as a whole.

The attacks: conditional lookups ran without the statement timeout (one ran 25 s), and a
request of many statements could run for the sum of their timeouts. Here a lookup is made
slow the way a busy production table makes it slow: another connection holds a lock on an
index table while the request runs.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager

import orjson
import psycopg
import pytest
import requests
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import limiter
from app.time_limits import Deadlines, TimeLimitExceeded
from tests.conftest import app_config
from tests.servers import threaded_server

FHIR_JSON = "application/fhir+json"
HELD_S = 6  # how long the lock is held: far longer than any limit under test


@pytest.fixture
def postgres(app):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("postgresql"):
        pytest.skip("statement timeouts and cancellation are PostgreSQL's (SQLite: see below)")
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def limited_server(app, tmp_path, **limits):
    config = app_config(app.config["SQLALCHEMY_DATABASE_URI"])
    config.update(SECRET_KEY=app.config["SECRET_KEY"], FHIRGATE_KEK=app.config["FHIRGATE_KEK"], **limits)
    limited = create_app(config, instance_path=tmp_path)
    try:
        with threaded_server(limited) as url:
            yield url
    finally:
        limited.extensions["fhirgate_audit"].flush()  # its AuditEvents land in this test's tables
        limiter.init_app(app)  # one limiter per process: back to the suite's app


@contextmanager
def table_locked(dsn: str, table: str):
    """Another session holds ``table`` exclusively for ``HELD_S`` seconds (or until the block ends)."""
    connection = psycopg.connect(dsn)
    connection.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    timer = threading.Timer(HELD_S, connection.rollback)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        connection.rollback()
        connection.close()


def _timed(call) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


CONDITIONAL = {
    "If-None-Exist": lambda s, url, h: s.post(
        f"{url}/Patient",
        data=orjson.dumps({"resourceType": "Patient"}),
        headers={**h, "If-None-Exist": "identifier=urn:x|1"},
    ),
    "conditional update": lambda s, url, h: s.put(
        f"{url}/Patient?identifier=urn:x|1", data=orjson.dumps({"resourceType": "Patient"}), headers=h
    ),
    "conditional delete": lambda s, url, h: s.delete(f"{url}/Patient?identifier=urn:x|1", headers=h),
    "conditional reference": lambda s, url, h: s.post(
        url,
        data=orjson.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Observation",
                            "status": "final",
                            "code": {"text": "x"},
                            "subject": {"reference": "Patient?identifier=urn:x|1"},
                        },
                        "request": {"method": "POST", "url": "Observation"},
                    }
                ],
            }
        ),
        headers=h,
    ),
}


@pytest.mark.parametrize("kind", CONDITIONAL)
def test_a_conditional_lookup_runs_under_the_statement_timeout(app, make, tmp_path, postgres, kind):
    make.hospital("general")
    token = make.api_key("general", permissions=["system/*.cruds"]).body["token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}
    with limited_server(app, tmp_path, FHIRGATE_STATEMENT_TIMEOUT_MS=300) as url, requests.Session() as s:
        s.get(f"{url}/fhir/general/Patient/none", headers=headers)  # warm: hospital, keys, token
        with table_locked(postgres, "fhir_idx_token"):
            response, took = _timed(lambda: CONDITIONAL[kind](s, f"{url}/fhir/general", headers))
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["code"] == "too-costly"
    assert took < HELD_S / 2


def test_a_request_gives_its_worker_back_when_its_budget_is_spent(app, make, tmp_path, postgres):
    make.hospital("general")
    token = make.api_key("general", permissions=["system/*.cruds"]).body["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with limited_server(app, tmp_path, FHIRGATE_REQUEST_TIME_LIMIT_S=1) as url, requests.Session() as s:
        s.get(f"{url}/fhir/general/Patient/none", headers=headers)
        with table_locked(postgres, "fhir_idx_string"):
            # Each statement is under its 10 s timeout; the request is not under its 1 s budget.
            response, took = _timed(lambda: s.get(f"{url}/fhir/general/Patient?name=x", headers=headers))
        assert response.status_code == 400, response.text
        assert "too long" in response.json()["issue"][0]["diagnostics"]
        assert 1 <= took < 2.5
        # The worker and its connection serve the next request as usual.
        assert s.get(f"{url}/fhir/general/Patient?name=x", headers=headers).status_code == 200


def test_no_statement_starts_once_the_budget_is_spent():
    deadlines = Deadlines()
    deadlines.start(0.05)
    try:
        deadlines.check()
        time.sleep(0.06)
        with pytest.raises(TimeLimitExceeded):
            deadlines.check()
    finally:
        deadlines.end()
    deadlines.check()  # no budget, no limit: threads outside requests (the audit writer)


def test_the_watchdog_interrupts_a_long_sqlite_statement(tmp_path):
    connection = sqlite3.connect(tmp_path / "slow.db", check_same_thread=False)
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    deadlines = Deadlines()
    deadlines.start(0.3)
    deadlines.attach(connection)
    started = time.monotonic()
    try:
        deadlines.check()  # what the engine's before_cursor_execute does: a statement under way
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            connection.execute(endless).fetchall()
    finally:
        deadlines.detach(connection)
        deadlines.end()
    assert time.monotonic() - started < 1.5
