"""Export jobs survive real life: workers share the queue without sharing a job, a worker killed
mid-export leaves a job another finishes (whole files, counts equal to a search's), a stopped
worker gives its job back, and one hospital's queue does not hold up another's."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from fhir.bulk import jobs as job_store
from fhir.bulk.tables import files, jobs
from tests.bulk.conftest import Exporter, bearer, load_patients, local
from tests.servers import export_worker, stop_process

LEASE = timedelta(seconds=60)


def _queue(app, hospital: str, client_id: str = "c1") -> str:
    with app.app_context(), db.engine.begin() as connection:
        return job_store.create_job(
            connection, hospital_id=hospital, client_id=client_id, client_kind="hospital_key",
            patient_id=None, smart_context=None, subject=None, scopes="system/*.rs", level="system",
            group_id=None,
            request_url="http://localhost/fhir/x/$export", parameters={"types": ["Patient"]},
        )  # fmt: skip


def _claim(app, worker: str, lease: timedelta = LEASE):
    with app.app_context(), db.engine.begin() as connection:
        return job_store.claim_next(connection, worker, lease)


def _job(app, job_id: str):
    with app.app_context(), db.engine.connect() as connection:
        return connection.execute(select(jobs).where(jobs.c.id == job_id)).first()


def test_the_next_job_is_of_the_hospital_served_least(app, make):
    make.hospital("alpha")
    make.hospital("beta")
    a1, a2, a3 = (_queue(app, "alpha") for _ in range(3))
    b1 = _queue(app, "beta")
    claimed = []
    for n in range(4):
        claimed.append(_claim(app, f"w{n}").id)
        time.sleep(0.01)  # started_at tells the hospitals apart
    assert claimed == [a1, b1, a2, a3]
    assert _claim(app, "w9") is None


def test_concurrent_claims_never_share_a_job(app, make):
    make.hospital("alpha")
    make.hospital("beta")
    queued = {_queue(app, hospital) for hospital in ("alpha", "beta") for _ in range(6)}
    claimed: list[str] = []
    start = threading.Barrier(6)

    def claim_all(n: int) -> None:
        start.wait()
        while (claim := _claim(app, f"worker-{n}")) is not None:
            claimed.append(claim.id)

    threads = [threading.Thread(target=claim_all, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claimed) == sorted(queued)  # each exactly once


def test_a_worker_that_lost_its_job_changes_nothing(app, make):
    make.hospital("alpha")
    job_id = _queue(app, "alpha")
    stale = _claim(app, "slow", lease=timedelta(seconds=-1))  # its lease ran out at once
    fresh = _claim(app, "fresh")
    assert (stale.id, fresh.id, fresh.attempt) == (job_id, job_id, 2)
    with app.app_context(), db.engine.begin() as connection:
        assert not job_store.renew(connection, stale, LEASE, 5, "still here")
        assert not job_store.add_file(
            connection, stale, name="1-Patient-1.ndjson", position=1, kind="output",
            resource_type="Patient", count=1, size=10, lease=LEASE, exported=1,
        )  # fmt: skip
        assert not job_store.complete(connection, stale, job_store.utcnow(), 1, LEASE)
        assert connection.execute(select(files)).all() == []
    assert _job(app, job_id).worker == "fresh"


def test_a_job_whose_workers_keep_dying_fails_visibly(app, client, make):
    make.hospital("general")
    exporter = Exporter(app, client, bearer(client, make.api_key("general", permissions=["system/*.rs"])))
    status = local(exporter.kickoff().headers["Content-Location"])
    for n in range(job_store.MAX_ATTEMPTS):
        assert _claim(app, f"doomed-{n}", lease=timedelta(seconds=-1)) is not None
    assert _claim(app, "last") is None
    failed = client.get(status, headers=exporter.auth)
    assert failed.status_code == 500
    assert "start it again" in failed.get_json()["issue"][0]["diagnostics"]


@pytest.fixture
def big_export(app, client, make):
    """A hospital of 10 patients (about a thousand resources) and a client to export it."""
    make.hospital("general")
    load_patients(app, "general", 10)
    return Exporter(app, client, bearer(client, make.api_key("general", permissions=["system/*.rs"])))


def _wait_for(condition, timeout: float = 60, every: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError("timed out")


def _complete_and_counted(exporter: Exporter, status: str) -> dict:
    done = _wait_for(
        lambda: (r := exporter.client.get(status, headers=exporter.auth)).status_code == 200 and r
    )
    manifest = done.get_json()
    found = exporter.files(manifest)
    for resource_type, resources in found.items():
        total = exporter.client.get(
            f"/fhir/general/{resource_type}?_total=accurate&_count=0", headers=exporter.auth
        ).get_json()["total"]
        assert (
            len(resources)
            == total
            == sum(e["count"] for e in manifest["output"] if e["type"] == resource_type)
        )
        assert len({r["id"] for r in resources}) == total  # no resource twice
    return manifest


def _exporting(app, exporter, **settings):
    """Kick off an export and start a worker with ``settings``; once the job runs and has
    written rows: its status URL, its id and the worker process (the caller stops it)."""
    status = local(exporter.kickoff().headers["Content-Location"])
    job_id = status.rsplit("/", 1)[1]
    worker = export_worker(app, **settings)
    try:
        _wait_for(lambda: (job := _job(app, job_id)).status == "running" and job.exported > 0)
    except BaseException:
        stop_process(worker)
        raise
    return status, job_id, worker


def test_a_worker_killed_mid_export_leaves_a_job_another_finishes(app, big_export):
    status, job_id, first = _exporting(app, big_export, LEASE_S=2, FILE_LINES=1)
    try:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop_process(first)
    killed = _job(app, job_id)
    assert killed.status == "running" and killed.attempts == 1  # mid-export when it died
    assert big_export.client.get(status, headers=big_export.auth).status_code == 202

    second = export_worker(app, LEASE_S=2, FILE_LINES=50)
    try:
        manifest = _complete_and_counted(big_export, status)
    finally:
        stop_process(second)
    assert _job(app, job_id).attempts == 2
    assert all(entry["url"].rsplit("/", 1)[1].startswith("2-") for entry in manifest["output"])
    folder = app.extensions["fhirgate_export_storage"].root / job_id
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        e["url"].rsplit("/", 1)[1] for e in manifest["output"]
    )


def test_a_stopped_worker_gives_its_job_back(app, big_export):
    status, job_id, worker = _exporting(app, big_export, FILE_LINES=1)
    try:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    finally:
        stop_process(worker)
    job = _job(app, job_id)
    assert (job.status, job.attempts, job.worker) == ("queued", 0, None)
    folder = app.extensions["fhirgate_export_storage"].root / job_id
    assert not folder.exists() or not any(folder.iterdir())  # its attempt's files are gone
    again = export_worker(app)
    try:
        _complete_and_counted(big_export, status)
    finally:
        stop_process(again)


def test_two_workers_share_the_queue(app, client, make, big_export):
    other = Exporter(app, client, bearer(client, make.api_key("general", permissions=["system/*.rs"])))
    statuses = [
        (exporter, local(exporter.kickoff().headers["Content-Location"]))
        for exporter in (big_export, other)
        for _ in range(3)
    ]
    workers = [export_worker(app, FILE_LINES=200) for _ in range(2)]
    try:
        for exporter, status in statuses:
            _complete_and_counted(exporter, status)
    finally:
        for worker in workers:
            stop_process(worker)
    for _, status in statuses:
        assert _job(app, status.rsplit("/", 1)[1]).attempts == 1


def test_a_running_export_cancelled_stops_and_leaves_nothing(app, big_export):
    status, job_id, worker = _exporting(app, big_export, LEASE_S=2, FILE_LINES=1)
    try:
        assert big_export.client.delete(status, headers=big_export.auth).status_code == 202
        assert big_export.client.get(status, headers=big_export.auth).status_code == 404
        folder = app.extensions["fhirgate_export_storage"].root / job_id
        _wait_for(lambda: _job(app, job_id) is None and not folder.exists(), timeout=30, every=0.1)
    finally:
        stop_process(worker)


def test_the_lease_is_renewed_while_a_slow_export_waits(app, client, make, monkeypatch):
    """An export that sits longer than its lease on one batch (a slow first FETCH) keeps its
    job: the heartbeat renews the lease, and no other worker can claim it meanwhile."""
    from fhir.bulk import runner
    from fhir.bulk.worker import run_one

    make.hospital("general")
    load_patients(app, "general", 1)
    exporter = Exporter(app, client, bearer(client, make.api_key("general", permissions=["system/*.rs"])))
    status = local(exporter.kickoff(query="_type=Patient").headers["Content-Location"])
    monkeypatch.setitem(app.config, "FHIRGATE_EXPORT_LEASE_S", 1)
    slow, release = threading.Event(), threading.Event()
    real = runner._Export.write_type

    def waiting(self, *args):
        slow.set()
        release.wait(10)
        return real(self, *args)

    monkeypatch.setattr(runner._Export, "write_type", waiting)

    def work():
        with app.app_context():
            run_one(app, "slow-worker", threading.Event())

    thread = threading.Thread(target=work)
    thread.start()
    try:
        assert slow.wait(10)
        time.sleep(2.5)  # two and a half leases
        assert _claim(app, "thief") is None
    finally:
        release.set()
        thread.join(30)
    assert exporter.client.get(status, headers=exporter.auth).status_code == 200
