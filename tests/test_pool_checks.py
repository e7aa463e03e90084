"""Pooled connections: checked before use only after sitting idle, and replaced when dead."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from app import pool_checks
from app.extensions import db


def _kill_the_pooled_connection(app) -> None:
    """Leave exactly one connection in the pool, and have the server close it under us."""
    with app.app_context():
        db.engine.dispose()
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.rollback()
        db.session.remove()  # back to the pool
        with psycopg.connect(db.engine.url.set(drivername="postgresql").render_as_string(False)) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.fixture
def postgres(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("needs TEST_DATABASE_URL=postgresql+psycopg://... (a server that can drop us)")


def test_an_idle_connection_the_server_dropped_is_replaced(app, postgres, monkeypatch):
    monkeypatch.setattr(pool_checks, "IDLE_CHECK_S", 0.0)
    _kill_the_pooled_connection(app)
    with app.app_context():
        assert db.session.execute(text("SELECT 1")).scalar_one() == 1
