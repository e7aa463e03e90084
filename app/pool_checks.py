"""Database connections are checked before use only when they sat idle in the pool.

SQLAlchemy's ``pool_pre_ping`` costs a round trip on every checkout, i.e. on every request.
A connection used a moment ago is alive; one idle for longer than ``IDLE_CHECK_S`` may have
been closed by a database restart or a proxy's idle timeout, so it is pinged first and
replaced if the ping fails (SQLAlchemy retries the checkout on ``DisconnectionError``).
"""

from __future__ import annotations

import time

from flask import Flask
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

from app.extensions import db

IDLE_CHECK_S = 10.0
_RETURNED_AT = "fhirgate_returned_at"


def init_pool_checks(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if not event.contains(engine, "checkout", _check_if_idle):
        event.listen(engine, "checkout", _check_if_idle)
        event.listen(engine, "checkin", _note_return)


def _note_return(dbapi_connection, record) -> None:
    if record is not None:
        record.info[_RETURNED_AT] = time.monotonic()


def _check_if_idle(dbapi_connection, record, proxy) -> None:
    returned = record.info.get(_RETURNED_AT)
    if returned is None or time.monotonic() - returned < IDLE_CHECK_S:
        return  # new (just connected) or used a moment ago
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()
    except Exception as error:  # any failure: this connection is not worth keeping
        raise DisconnectionError(type(error).__name__) from None
