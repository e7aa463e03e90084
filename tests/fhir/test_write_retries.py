"""A write that loses a race (deadlock, serialization failure, SQLite's lock) runs again, then 409.

The retry must start from nothing: no version, index row or buffered write of the failed attempt
may survive into the one that succeeds.
"""

from __future__ import annotations

import logging
import threading
import time

import orjson
import pytest
import requests
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from app.extensions import db
from fhir import retry
from fhir.storage import writes
from tests.conftest import count_stored
from tests.fhir.test_bundles import bundle, entry
from tests.fhir.test_concurrent_transactions import assert_store_consistent
from tests.servers import threaded_server


class _DeadlockDetected(Exception):
    sqlstate = "40P01"


def _deadlock() -> OperationalError:
    return OperationalError("UPDATE fhir_resources ...", {}, _DeadlockDetected("deadlock detected"))


def _patient(i: int, family: str = "Doe") -> dict:
    return {"resourceType": "Patient", "id": f"p{i}", "name": [{"family": family}]}


def _put(resource: dict) -> dict:
    return entry(resource, method="PUT", url=f"Patient/{resource['id']}")


@pytest.fixture
def flushes_fail(monkeypatch):
    """The unit of work's flush fails as a deadlock victim's would, ``times`` times."""
    state = {"left": 0, "failed": 0}
    original = writes.PendingWrites._flush

    def flush(self, session):
        if state["left"] and (self.history or self.copying):
            state["left"] -= 1
            state["failed"] += 1
            raise _deadlock()
        return original(self, session)

    monkeypatch.setattr(writes.PendingWrites, "_flush", flush)
    monkeypatch.setattr(retry, "BACKOFF_S", 0.001)
    return state


def test_a_transaction_that_loses_a_deadlock_runs_again_from_nothing(fhir, app, flushes_fail):
    fhir.put("/Patient/p0", _patient(0))
    # More than HAND_OFF_RESOURCES new ones: on PostgreSQL a COPY is under way when it fails.
    entries = [_put(_patient(i, "New")) for i in range(1, writes.HAND_OFF_RESOURCES + 20)]
    entries.append(_put(_patient(0, "Changed")))
    flushes_fail["left"] = 2
    response = fhir.post("/", bundle("transaction", *entries))
    assert response.status_code == 200, response.get_json()
    assert flushes_fail["failed"] == 2
    statuses = [e["response"]["status"] for e in response.get_json()["entry"]]
    assert statuses == ["201 Created"] * (len(entries) - 1) + ["200 OK"]
    assert fhir.get("/Patient/p0").get_json()["meta"]["versionId"] == "2"
    with app.app_context():
        assert count_stored("fhir_resources") == len(entries)
        assert count_stored("fhir_history") == len(entries) + 1
        db.session.rollback()
    assert_store_consistent(app, fhir.hospital)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_every_single_write_is_retried(fhir, app, flushes_fail, method):
    fhir.put("/Patient/p1", _patient(1))
    flushes_fail["left"] = 1
    if method == "post":
        response = fhir.post("/Patient", _patient(2))
    elif method == "put":
        response = fhir.put("/Patient/p1", _patient(1, "Changed"))
    elif method == "patch":
        response = fhir.patch("/Patient/p1", [{"op": "replace", "path": "/name/0/family", "value": "X"}])
    else:
        response = fhir.delete("/Patient/p1")
    assert response.status_code in (200, 201, 204), response.get_json()
    assert flushes_fail["failed"] == 1
    assert_store_consistent(app, fhir.hospital)


def test_a_write_that_keeps_losing_is_a_409_and_stores_nothing(fhir, app, flushes_fail, caplog):
    caplog.set_level(logging.INFO, logger="fhir.retry")
    flushes_fail["left"] = 100
    response = fhir.post("/", bundle("transaction", *[_put(_patient(i)) for i in range(5)]))
    assert response.status_code == 409
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "conflict"
    assert flushes_fail["failed"] == retry.ATTEMPTS
    assert len([r for r in caplog.records if "lost a race" in r.getMessage()]) == retry.ATTEMPTS
    with app.app_context():
        assert count_stored("fhir_resources") == 0 and count_stored("fhir_history") == 0
        db.session.rollback()
    flushes_fail["left"] = 0
    assert fhir.post("/Patient", _patient(9)).status_code == 201


def test_a_request_error_is_not_retried(fhir, flushes_fail, monkeypatch):
    calls = []
    original = retry.lost_race
    monkeypatch.setattr(retry, "lost_race", lambda error: calls.append(error) or original(error))
    assert fhir.put("/Patient/p1", {"resourceType": "Patient", "id": "p2"}).status_code == 400
    assert len(calls) == 1


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_real_deadlock_on_postgresql_is_retried_over_a_socket(app, fhir, caplog):
    """The test's own transaction and a transaction Bundle lock two Patients in opposite orders."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's deadlock detection")
    caplog.set_level(logging.INFO, logger="fhir.retry")
    for i in (1, 2):
        fhir.put(f"/Patient/p{i}", _patient(i))
    lock = (
        "SELECT 1 FROM fhir_resources"
        " WHERE hospital_id = 'general' AND resource_type = 'Patient' AND id = :i FOR UPDATE"
    )
    with threaded_server(app) as url, engine.connect() as mine:
        mine.execute(text("SET deadlock_timeout = '30s'"))  # the request's backend finds the cycle
        mine.execute(text(lock), {"i": "p2"})
        answer = {}

        def send() -> None:
            body = orjson.dumps(bundle("transaction", _put(_patient(1, "A")), _put(_patient(2, "B"))))
            headers = {"Authorization": f"Bearer {fhir.token}", "Content-Type": "application/fhir+json"}
            answer["response"] = requests.post(f"{url}/fhir/general", data=body, headers=headers, timeout=60)

        sender = threading.Thread(target=send)
        sender.start()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        with engine.connect() as watcher:

            def request_waits() -> bool:
                try:  # pg_stat_activity is a snapshot per transaction: a new one each time
                    return watcher.execute(text(waiting)).scalar() == 1
                finally:
                    watcher.rollback()

            _wait_for(request_waits)
        mine.execute(text(lock), {"i": "p1"})  # waits for the request, which waits for us: a cycle
        mine.commit()
        sender.join(60)
    response = answer["response"]
    assert response.status_code == 200, response.text
    assert any("lost a race" in r.getMessage() for r in caplog.records)
    assert [fhir.get(f"/Patient/p{i}").get_json()["meta"]["versionId"] for i in (1, 2)] == ["2", "2"]
    assert_store_consistent(app, fhir.hospital)


@pytest.fixture
def short_sqlite_busy_timeout(app):
    """SQLite waits 5 s for a lock before "database is locked"; 50 ms here."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's lock")

    def on_connect(dbapi_connection, record):
        dbapi_connection.execute("PRAGMA busy_timeout = 50")

    engine.dispose()
    event.listen(engine, "connect", on_connect)
    yield engine
    event.remove(engine, "connect", on_connect)
    engine.dispose()


def test_database_is_locked_on_sqlite_is_retried_not_a_500(app, fhir, short_sqlite_busy_timeout, caplog):
    caplog.set_level(logging.INFO, logger="fhir.retry")
    holder = short_sqlite_busy_timeout.raw_connection()
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's write lock
        answer = {}
        sender = threading.Thread(target=lambda: answer.update(r=fhir.post("/Patient", _patient(3))))
        sender.start()
        _wait_for(lambda: any("lost a race" in r.getMessage() for r in caplog.records))
        holder.rollback()
        sender.join(30)
        assert answer["r"].status_code == 201, answer["r"].get_json()

        holder.execute("BEGIN IMMEDIATE")
        refused = fhir.post("/Patient", _patient(4))
        holder.rollback()
    finally:
        holder.close()
    assert refused.status_code == 409
    assert refused.get_json()["issue"][0]["code"] == "conflict"
    with app.app_context():
        assert count_stored("fhir_resources") == 1
        db.session.rollback()
