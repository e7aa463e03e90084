"""Each client assertion is used once: its ``jti`` is remembered until the assertion expires.

One ``INSERT ... ON CONFLICT`` on a primary key decides, atomically and for every worker
and host sharing the database: the row is new (first use), or it exists but has expired
(a ``jti`` reused after its ``exp``, which RFC 7523 §3 allows), or it is a replay.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db
from app.timeutil import utcnow
from oauth.models import UsedAssertion

PURGE_EVERY_S = 60
_INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}
_last_purge = [0.0]
_purge_lock = threading.Lock()


def _key(client_id: str, jti: str) -> str:
    return hashlib.sha256(f"{client_id}\0{jti}".encode()).hexdigest()


def first_use(client_id: str, jti: str, expires_at: datetime) -> bool:
    """Record the assertion; False when the same client already used this ``jti``."""
    now = utcnow()
    insert = _INSERTS[db.engine.dialect.name]
    table = UsedAssertion.__table__
    statement = (
        insert(table)
        .values(key=_key(client_id, jti), expires_at=expires_at)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"expires_at": expires_at},
            where=table.c.expires_at < now,
        )
        .returning(table.c.key)  # a row back means it was written (rowcount is -1 on psycopg)
    )
    # One statement on a connection of its own, in autocommit: atomic by itself, one round
    # trip, and the mark holds whatever the rest of the request does.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        recorded = connection.execute(statement).first() is not None
        _purge_expired(connection, now)
    return recorded


def _purge_expired(connection, now: datetime) -> None:
    with _purge_lock:
        if time.monotonic() - _last_purge[0] < PURGE_EVERY_S:
            return
        _last_purge[0] = time.monotonic()
    connection.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < now))
