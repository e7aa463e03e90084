"""A FHIR write that lost a race with another transaction runs again, from a clean session.

PostgreSQL aborts one of two transactions waiting for each other's locks (SQLSTATE 40P01,
deadlock_detected) and a serializable transaction it cannot order (40001,
serialization_failure); SQLite answers "database is locked" (SQLITE_BUSY) when waiting could
deadlock or has lasted its busy timeout; a unique key of the store taken meanwhile by another
writer (a new resource's id, a version) is a ``WriteConflict``. None of them says anything about
the request itself, so the view runs again, up to ``ATTEMPTS`` times with a short random pause
(so that the racers do not meet again in step), and then answers 409 with an OperationOutcome.

Each attempt starts from nothing: the session is rolled back and removed (with it the unit of
work's buffer, ``fhir.storage.writes``; a rollback first waits for any background COPY), the
body is parsed afresh by the view, a validation helper's verdicts apply only to the objects they
were made for, and the resources noted for the AuditEvent are forgotten.
"""

from __future__ import annotations

import functools
import logging
import random
import time

from app.extensions import db
from fhir.errors import FhirError
from fhir.response_size import forget_returned
from fhir.storage.writes import WriteConflict

log = logging.getLogger(__name__)

ATTEMPTS = 4
BACKOFF_S = 0.02  # the first pause is up to 20 ms, then up to 40 and 80 ms
RACE_STATES = frozenset({"40P01", "40001"})  # PostgreSQL Appendix A: deadlock, serialization
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def lost_race(error: BaseException) -> bool:
    """Whether ``error`` is a lost race rather than anything about the request."""
    if isinstance(error, WriteConflict):
        return True
    driver_error = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
    if getattr(driver_error, "sqlstate", None) in RACE_STATES:
        return True
    code = getattr(driver_error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)


def retried(view):
    """Run ``view`` again while it loses races with other writers, at most ``ATTEMPTS`` times."""

    @functools.wraps(view)
    def run(*args, **kwargs):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return view(*args, **kwargs)
            except Exception as error:
                if not lost_race(error):
                    raise
                _start_afresh()
                log.info("write lost a race (%s): attempt %d/%d", type(error).__name__, attempt, ATTEMPTS)
                if attempt == ATTEMPTS:
                    raise FhirError.conflict(
                        f"Concurrent writes to the same resources got in the way {ATTEMPTS} times; "
                        "nothing was stored. Send the request again."
                    ) from None
                time.sleep(random.uniform(0, BACKOFF_S * 2 ** (attempt - 1)))  # noqa: S311 - jitter
        raise AssertionError("unreachable")

    return run


def _start_afresh() -> None:
    db.session.rollback()
    db.session.remove()
    forget_returned()
