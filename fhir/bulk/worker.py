"""``fhirgate worker``: claims export jobs and runs them, one at a time, until told to stop.

Run as many as the hosts allow; they share the queue through the database alone. SIGTERM or
SIGINT stops a worker within one batch of rows: its job goes back to the queue for another.
A worker also deletes expired exports (their rows and files) as it goes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from flask import Flask

from app.extensions import db
from fhir.bulk import jobs as job_store
from fhir.bulk.runner import GroupGone, JobLost, RunSettings, Stopping, run_job
from fhir.bulk.storage import ExportStorage

POLL_S = 1.0
log = logging.getLogger(__name__)


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
        with db.engine.begin() as connection:
            job_store.release(connection, claim)
        storage.delete_job(claim.id)
    except JobLost:
        with db.engine.begin() as connection:
            job = job_store.find_job(connection, claim.hospital_id, claim.id)
            if job is not None and job.status == "cancelled":
                job_store.forget(connection, claim.id)
                storage.delete_job(claim.id)
    except GroupGone:
        _fail(claim, settings, "The Group of this export was deleted, or is out of reach, before it ran.")
    except Exception as error:  # noqa: BLE001 - a job's failure must be visible, and the worker go on
        log.warning("export %s failed (%s)", claim.id, type(error).__name__, exc_info=True)
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
            stop.wait(POLL_S)
