"""``fhirgate worker``: claims export jobs and runs them, one at a time, until told to stop.

Run as many as the hosts allow; they share the queue through the database alone. SIGTERM or
SIGINT stops a worker within one batch of rows: its job goes back to the queue for another.
A worker also deletes expired exports (their rows and files) as it goes.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading

import psycopg
from flask import Flask
from sqlalchemy import text

from app.extensions import db
from fhir.bulk import jobs as job_store
from fhir.bulk.runner import GroupGone, JobLost, RunSettings, Stopping, run_job
from fhir.bulk.storage import ExportStorage

POLL_S = 1.0
WAKE_CHANNEL = "fhirgate_exports"  # a kick-off's NOTIFY on PostgreSQL: no wait for the next poll
log = logging.getLogger(__name__)


def announce_job() -> None:
    """Tell waiting workers (PostgreSQL) that a job was queued; sent when the kick-off commits."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"NOTIFY {WAKE_CHANNEL}"))


class Wakeup:
    """Waits up to ``POLL_S`` for the next poll, or less when a kick-off announces a job."""

    def __init__(self) -> None:
        self._connection = None
        if db.engine.dialect.name == "postgresql":
            url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            try:
                self._connection = psycopg.connect(url, autocommit=True, connect_timeout=5)
                self._connection.execute(f"LISTEN {WAKE_CHANNEL}")
            except psycopg.Error as error:
                log.warning("export worker: no wake-ups (%s); polling", type(error).__name__)
                self._connection = None

    def wait(self, stop: threading.Event) -> None:
        if self._connection is None:
            stop.wait(POLL_S)
            return
        pgconn = self._connection.pgconn
        try:
            if select.select([pgconn.socket], [], [], POLL_S)[0]:
                pgconn.consume_input()
                while pgconn.notifies() is not None:
                    pass
        except (OSError, psycopg.Error) as error:
            log.warning("export worker: wake-ups lost (%s); polling", type(error).__name__)
            self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def purge_expired(storage: ExportStorage) -> int:
    with db.engine.begin() as connection:
        expired = job_store.expired_jobs(connection)
    for job_id in expired:
        storage.delete_job(job_id)
        with db.engine.begin() as connection:
            job_store.forget(connection, job_id)
    return len(expired)


def run_one(app: Flask, name: str, stop: threading.Event) -> bool:
    """Claim and run the next job; False if there was none."""
    settings = RunSettings.from_config(app.config)
    storage: ExportStorage = app.extensions["fhirgate_export_storage"]
    with db.engine.begin() as connection:
        claim = job_store.claim_next(connection, name, settings.lease)
    if claim is None:
        return False
    try:
        run_job(claim, storage, settings, stop)
    except Stopping:
        storage.delete_attempt(claim.id, claim.attempt)  # while still the job's holder
        with db.engine.begin() as connection:
            job_store.release(connection, claim)
    except JobLost:
        with db.engine.begin() as connection:
            job = job_store.find_job(connection, claim.hospital_id, claim.id)
            if job is not None and job.status == "cancelled":
                job_store.forget(connection, claim.id)
        if job is None or job.status == "cancelled":
            storage.delete_job(claim.id)  # cancelled (or purged meanwhile): nothing of it stays
        else:
            storage.delete_attempt(claim.id, claim.attempt)  # another worker has it now
    except GroupGone:
        _fail(claim, settings, "The Group of this export was deleted, or is out of reach, before it ran.")
    except Exception as error:  # noqa: BLE001 - a job's failure must be visible, and the worker go on
        # By type only: a database error's text carries the statement's values (patient ids).
        log.warning("export %s failed (%s)", claim.id, type(error).__name__)
        _fail(claim, settings, f"The export failed on the server ({type(error).__name__}); start it again.")
    finally:
        db.session.remove()
    return True


def _fail(claim: job_store.Claim, settings: RunSettings, message: str) -> None:
    with db.engine.begin() as connection:
        job_store.fail(connection, claim, message, settings.retention)


def work(app: Flask, stop: threading.Event, *, until_idle: bool = False) -> None:
    """Run jobs until ``stop`` is set (or, ``until_idle``, until the queue is empty)."""
    name = worker_name()
    storage: ExportStorage = app.extensions["fhirgate_export_storage"]
    wakeup = Wakeup()
    try:
        _work(app, stop, name, storage, wakeup, until_idle)
    finally:
        wakeup.close()


def _work(
    app: Flask, stop: threading.Event, name: str, storage: ExportStorage, wakeup: Wakeup, until_idle: bool
):
    while not stop.is_set():
        try:
            purge_expired(storage)
            ran = run_one(app, name, stop)
        except Exception as error:  # noqa: BLE001 - the database may be away for a moment
            log.warning("export worker: %s; trying again", type(error).__name__)
            db.session.remove()
            ran = False
        if not ran:
            if until_idle:
                return
            wakeup.wait(stop)
