"""Export jobs in the database: created by a kick-off, claimed by workers, watched by clients.

A job is durable from its kick-off. A worker claims the next one with ``SELECT … FOR UPDATE
SKIP LOCKED`` (several hosts share the queue without a coordinator) and holds it by a lease it
renews while it works; every write a worker makes about a job names the attempt it holds, so a
worker that lost its lease (it paused, or another took the job over) changes nothing. A job
whose worker died is taken up again when its lease runs out and started afresh, at most
``MAX_ATTEMPTS`` times; after that it fails, visibly, with an OperationOutcome.

The next job is the oldest of the hospital with the fewest running jobs, then of the hospital
served longest ago: a hospital that queues a hundred exports delays another's by one job.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from app.timeutil import utcnow
from fhir.bulk.tables import files, jobs

MAX_ATTEMPTS = 3
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class Claim:
    """A job as a worker holds it: the attempt number makes every later write conditional."""

    id: str
    hospital_id: str
    attempt: int
    worker: str


def new_job_id() -> str:
    return secrets.token_urlsafe(16)


def create_job(connection: Connection, **values) -> str:
    job_id = new_job_id()
    values = {**values, "parameters": orjson.dumps(values["parameters"]).decode()}
    connection.execute(
        insert(jobs).values(id=job_id, status="queued", attempts=0, exported=0, created_at=utcnow(), **values)
    )
    return job_id


def active_jobs(connection: Connection, hospital_id: str, client_id: str) -> int:
    j = jobs.c
    query = select(func.count()).where(
        j.hospital_id == hospital_id, j.client_id == client_id, j.status.in_(ACTIVE)
    )
    return connection.execute(query).scalar_one()


def _claimable(now: datetime):
    j = jobs.c
    return or_(j.status == "queued", and_(j.status == "running", j.lease_until < now))


def claim_next(connection: Connection, worker: str, lease: timedelta) -> Claim | None:
    """Take the next job (see the module's note on the order), or None; fail the ones whose
    workers died too often. The caller commits."""
    now = utcnow()
    j = jobs.c
    other = jobs.alias("other")
    o = other.c
    running_there = (
        select(func.count())
        .where(o.hospital_id == j.hospital_id, o.status == "running", o.lease_until >= now)
        .scalar_subquery()
    )
    served_there = select(func.max(o.started_at)).where(o.hospital_id == j.hospital_id).scalar_subquery()
    while True:
        candidate = connection.execute(
            select(j.id, j.hospital_id, j.attempts)
            .where(_claimable(now))
            .order_by(running_there, served_there.nulls_first(), j.created_at)
            .limit(1)
            .with_for_update(skip_locked=True, of=jobs)
        ).first()
        if candidate is None:
            return None
        if candidate.attempts >= MAX_ATTEMPTS:
            message = f"The export stopped {MAX_ATTEMPTS} times before it finished; start it again."
            _finish(connection, candidate.id, "failed", now, error=message)
            continue
        attempt = candidate.attempts + 1
        taken = connection.execute(
            update(jobs)
            .where(j.id == candidate.id, _claimable(now))
            .values(
                status="running",
                attempts=attempt,
                worker=worker[:100],
                lease_until=now + lease,
                started_at=now,
                exported=0,
                progress="Starting",
            )
        ).rowcount
        if taken:
            connection.execute(delete(files).where(files.c.job_id == candidate.id))
            return Claim(candidate.id, candidate.hospital_id, attempt, worker[:100])


def _held(claim: Claim):
    j = jobs.c
    return and_(
        j.id == claim.id, j.status == "running", j.attempts == claim.attempt, j.worker == claim.worker
    )


def renew(connection: Connection, claim: Claim, lease: timedelta, exported: int, progress: str) -> bool:
    """Extend the lease and report progress; False if the job is no longer this attempt's
    (cancelled, or taken over after the lease ran out)."""
    values = {"lease_until": utcnow() + lease, "exported": exported, "progress": progress[:200]}
    return bool(connection.execute(update(jobs).where(_held(claim)).values(**values)).rowcount)


def add_file(connection: Connection, claim: Claim, *, name: str, position: int, kind: str,
             resource_type: str, count: int, size: int, lease: timedelta, exported: int) -> bool:  # fmt: skip
    """Record a finished file, if the job is still this attempt's."""
    if not renew(connection, claim, lease, exported, f"{exported:,} resources written"):
        return False
    connection.execute(
        insert(files).values(
            job_id=claim.id,
            name=name,
            position=position,
            kind=kind,
            resource_type=resource_type,
            count=count,
            bytes=size,
        )  # fmt: skip
    )
    return True


def complete(connection: Connection, claim: Claim, transaction_time: datetime, exported: int,
             retention: timedelta) -> bool:  # fmt: skip
    now = utcnow()
    values = {
        "status": "completed", "finished_at": now, "expires_at": now + retention, "lease_until": None,
        "transaction_time": transaction_time, "exported": exported, "progress": None,
    }  # fmt: skip
    return bool(connection.execute(update(jobs).where(_held(claim)).values(**values)).rowcount)


def fail(connection: Connection, claim: Claim, message: str, retention: timedelta) -> bool:
    now = utcnow()
    values = {"status": "failed", "finished_at": now, "expires_at": now + retention, "lease_until": None,
              "error": message[:500], "progress": None}  # fmt: skip
    return bool(connection.execute(update(jobs).where(_held(claim)).values(**values)).rowcount)


def release(connection: Connection, claim: Claim) -> bool:
    """Give the job back to the queue (the worker is stopping): the attempt does not count.
    False if it was no longer this attempt's."""
    released = connection.execute(
        update(jobs)
        .where(_held(claim))
        .values(status="queued", attempts=claim.attempt - 1, worker=None, lease_until=None, progress=None)
    ).rowcount
    if released:
        connection.execute(delete(files).where(files.c.job_id == claim.id))
    return bool(released)


def _finish(connection: Connection, job_id: str, status: str, now: datetime, *, error: str) -> None:
    connection.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            status=status,
            finished_at=now,
            expires_at=now + timedelta(days=1),
            lease_until=None,
            error=error,
            progress=None,
        )  # fmt: skip
    )


def find_job(connection: Connection, hospital_id: str, job_id: str):
    """The job row, or None (an id of another shape is simply unknown)."""
    if len(job_id) > 32:
        return None
    j = jobs.c
    return connection.execute(select(jobs).where(j.id == job_id, j.hospital_id == hospital_id)).first()


def job_files(connection: Connection, job_id: str):
    f = files.c
    return connection.execute(select(files).where(f.job_id == job_id).order_by(f.position)).all()


def cancel(connection: Connection, job_id: str) -> bool:
    """Cancel a job: True if its files can go now (no worker has it), False if it is running —
    its worker finds out at its next renewal and cleans up, or, if that worker died, the purge
    does once the lease has run out. The row is locked first: a claim cannot slip in between."""
    j = jobs.c
    row = connection.execute(select(j.status).where(j.id == job_id).with_for_update()).first()
    if row is not None and row.status == "running":
        connection.execute(update(jobs).where(j.id == job_id).values(status="cancelled"))
        return False
    connection.execute(delete(jobs).where(j.id == job_id))
    return True


def expired_jobs(connection: Connection, limit: int = 100) -> list[str]:
    """Jobs whose files have expired, and cancelled jobs no worker holds any more."""
    now = utcnow()
    j = jobs.c
    query = (
        select(j.id)
        .where(
            or_(
                and_(j.status.in_(("completed", "failed")), j.expires_at < now),
                and_(j.status == "cancelled", or_(j.lease_until.is_(None), j.lease_until < now)),
            )
        )
        .limit(limit)
    )
    return list(connection.execute(query).scalars())


def forget(connection: Connection, job_id: str) -> None:
    connection.execute(delete(jobs).where(jobs.c.id == job_id))
