"""SQLite savepoints inside a real transaction.

Python's ``sqlite3`` driver (in its legacy transaction mode, the default before Python 3.16)
begins a transaction only before INSERT, UPDATE or DELETE. A SAVEPOINT taken before the first
write therefore opens a transaction of its own, which its RELEASE commits: a request that failed
after that (a batch Bundle refused as a whole, a write retried after losing a race) kept what its
savepoints had released (SQLAlchemy's SQLite dialect documentation, "Legacy Transaction Mode").
So before a savepoint outside a transaction, a BEGIN opens the transaction it belongs to.

Reads still run outside a transaction until the first write, as the driver's legacy mode
wants: holding SQLite's shared lock from a request's first read would block every other
connection's commit until the request ends (the key ring and the assertion replay check use
connections of their own within a request).
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event

from app.extensions import db


def init_sqlite_transactions(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite" and not event.contains(engine, "savepoint", _begin_first):
        event.listen(engine, "savepoint", _begin_first)


def _begin_first(connection, name) -> None:
    if connection._is_autocommit_isolation():  # noqa: SLF001 - AUTOCOMMIT: nothing to belong to
        return
    if not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN")
