"""A FHIR read on PostgreSQL goes over ``app.direct_reads`` (libpq, no session connection),
and falls back to the session when that connection fails."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, text

from app.direct_reads import REST_AFTER_FAILURE_S, DirectReads, direct_reads
from app.extensions import db
from tests.conftest import token_request


@pytest.fixture
def reader(client, make):
    make.hospital("general")
    make.patient("general", "p1", family="Direct")
    response = token_request(client, make.api_key("general"))
    headers = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    return lambda path: client.get(f"/fhir/general/{path}", headers=headers)


def test_a_read_checks_out_no_session_connection(app, postgres_only, reader):
    assert reader("Patient/p1").status_code == 200  # fills the worker's caches
    checkouts = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: checkouts.append(1)  # noqa: E731
    event.listen(engine, "checkout", listener)
    try:
        response = reader("Patient/p1")
    finally:
        event.remove(engine, "checkout", listener)
    assert response.status_code == 200 and response.get_json()["name"] == [{"family": "Direct"}]
    assert checkouts == []


def test_a_read_over_a_killed_connection_is_answered_the_ordinary_way(app, postgres_only, reader):
    first = reader("Patient/p1")
    with app.app_context():
        held = direct_reads()._local.held
        db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": held[1].info.backend_pid})
        db.session.commit()
    again = reader("Patient/p1")
    assert again.status_code == 200 and again.get_data() == first.get_data()
    assert again.headers["ETag"] == first.headers["ETag"]
    assert reader("Patient/p1").status_code == 200  # and the next one reconnects


def test_missing_and_deleted_resources_read_as_before(postgres_only, reader, client, make):
    assert reader("Patient/nobody").status_code == 404
    key = make.api_key("general", permissions=["system/Patient.cruds"])
    token = token_request(client, key).get_json()["access_token"]
    assert client.delete(
        "/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"}
    ).status_code in (
        200,
        204,
    )
    assert reader("Patient/p1").status_code == 410


def test_rows_come_as_text_and_a_failure_rests_direct_reads_a_while(app, postgres_only, monkeypatch):
    with app.app_context():
        reads = DirectReads(db.engine)
        assert reads.run("t_now", "SELECT 1, NULL::text, 'x'") == [("1", None, "x")]
        assert reads.run("t_bad", "SELECT * FROM no_such_table") is None
        assert reads.run("t_args", "SELECT $1::int + 1", ("41",)) is None  # resting: no reconnect storm
        later = time.monotonic() + REST_AFTER_FAILURE_S + 1
        monkeypatch.setattr(time, "monotonic", lambda: later)
        assert reads.run("t_args", "SELECT $1::int + 1", ("41",)) == [("42",)]
