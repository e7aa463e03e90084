"""SQLite transactions that begin where the writing starts, holding SQLite's write lock.

Python's ``sqlite3`` driver (in its legacy transaction mode, the default before Python 3.16)
begins a transaction only before INSERT, UPDATE or DELETE. Two things go wrong with that:

* a SAVEPOINT taken before the first write opens a transaction of its own, which its RELEASE
  commits: a request failing after that (a batch Bundle refused as a whole, a write retried
  after losing a race) kept what its savepoints had released (SQLAlchemy's SQLite dialect
  documentation, "Legacy Transaction Mode");
* the read of the versions a write will replace (``FOR UPDATE`` on PostgreSQL, which SQLite
  lacks) runs outside any transaction, so two writers read the same version and the second
  one's new version collides with the first's.

So a savepoint or a locking read outside a transaction first runs ``BEGIN IMMEDIATE``: SQLite's
write lock, taken (or waited for, up to the driver's busy timeout) before the transaction reads
what it is about to change. Writers of the store then follow each other. Other reads still run
outside a transaction until the first write, as the legacy mode wants: holding SQLite's shared
lock from a request's first read would block every other connection's commit until the request
ends (the key ring and the assertion replay check use connections of their own in a request).
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import Connection, event

from app.extensions import db


def init_sqlite_transactions(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite" and not event.contains(engine, "savepoint", _begin_first):
        event.listen(engine, "savepoint", _begin_first)


def begin_writing(connection: Connection) -> None:
    """On SQLite, make sure the transaction is open and holds the write lock (else nothing)."""
    if connection.dialect.name != "sqlite" or connection._is_autocommit_isolation():  # noqa: SLF001
        return
    if not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_first(connection: Connection, name) -> None:
    begin_writing(connection)
