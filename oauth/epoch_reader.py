"""The revocation epoch (``oauth.validity``) read without a SQLAlchemy session: by every
request that checks a token, and by the token fast path while it signs.

On PostgreSQL the read goes through ``app.direct_reads`` (libpq, a connection per thread,
~20 us of client CPU, and it can overlap other work); other databases borrow a pooled
connection and read at once. A read that fails answers ``None`` and the caller takes the
ordinary path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from app.direct_reads import DirectReads

EPOCH_QUERY = "SELECT value FROM oauth_epoch WHERE id = 1"

log = logging.getLogger(__name__)


class EpochReader:
    def __init__(self, engine: Engine, reads: DirectReads) -> None:
        self._engine = engine
        self._reads = reads

    @property
    def direct(self) -> bool:
        """Whether reads go over a connection of their own (PostgreSQL), not the pool's."""
        return self._reads.available

    def read(self) -> int | None:
        """The epoch now (0 when the row is missing), or None if it could not be read."""
        return self.start()()

    def start(self) -> Callable[[], int | None]:
        """Ask for the epoch now; the function returned waits for it (call it exactly once,
        before this thread's next ``start``) and answers as ``read`` does."""
        if not self.direct:
            value = self._read_pooled()
            return lambda: value
        rows_now = self._reads.start("fhirgate_epoch", EPOCH_QUERY)

        def epoch() -> int | None:
            rows = rows_now()
            if rows is None:
                return None
            return int(rows[0][0] or 0) if rows else 0

        return epoch

    def _read_pooled(self) -> int | None:
        try:
            connection = self._engine.raw_connection()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(EPOCH_QUERY)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
            finally:
                connection.close()
        except Exception as error:  # noqa: BLE001 - any failure means: take the ordinary path
            log.warning("epoch read failed (%s): taking the ordinary path", type(error).__name__)
            return None
        return (row[0] or 0) if row else 0


def init_epoch_reader(app: Flask, engine: Engine) -> None:
    app.extensions["fhirgate_epoch_reader"] = EpochReader(engine, app.extensions["fhirgate_direct_reads"])


def epoch_reader() -> EpochReader:
    return current_app.extensions["fhirgate_epoch_reader"]
