"""The Alembic migrations build, match and tear down the schema the models describe.

Production builds its schema only with ``fhirgate db upgrade``, so the migrations, not
``create_all``, are what must be right: on an empty database, in step with the models, and
reversible.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from app.extensions import db

REPO = Path(__file__).resolve().parent.parent
FHIRGATE = Path(sys.executable).parent / "fhirgate"
HEAD = ScriptDirectory(str(REPO / "migrations")).get_current_head()
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
CLI_TIMEOUT = 120


def fhirgate(*args: str, database_url: str) -> subprocess.CompletedProcess:
    """Run the console script against ``database_url``, as an operator would."""
    env = dict(os.environ)
    env.pop("FHIRGATE_ENV", None)
    env["DATABASE_URL"] = database_url
    env["FHIRGATE_BASE_URL"] = "http://127.0.0.1:8000"
    result = subprocess.run(
        [str(FHIRGATE), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"fhirgate {' '.join(args)} exited {result.returncode}\n{result.stderr}"
    return result


def model_tables() -> set[str]:
    tables = set(db.metadata.tables)
    assert tables, "db.metadata holds no tables: are the models imported?"
    return tables


def schema_state(database_url: str) -> tuple[set[str], str | None]:
    """The tables in the database and the Alembic revision it is stamped with."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            revision = None
            if "alembic_version" in tables:
                revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return tables, revision
    finally:
        engine.dispose()


def assert_schema_at_head(database_url: str) -> None:
    tables, revision = schema_state(database_url)
    missing = model_tables() - tables
    assert not missing, f"tables missing after upgrade: {sorted(missing)}"
    assert revision == HEAD


@pytest.fixture
def empty_postgresql():
    """A freshly created, empty PostgreSQL database, dropped afterwards."""
    if not TEST_DATABASE_URL.startswith("postgresql"):
        pytest.skip("needs TEST_DATABASE_URL=postgresql+psycopg://...")
    server = make_url(TEST_DATABASE_URL)
    name = f"fhirgate_migrations_{secrets.token_hex(6)}"
    admin = psycopg.connect(
        host=server.host,
        port=server.port or 5432,
        user=server.username,
        password=server.password,
        dbname=server.database,
        autocommit=True,
        connect_timeout=10,
    )
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture
def empty_sqlite(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'fresh.db'}"


def test_db_upgrade_builds_schema_on_empty_postgresql(empty_postgresql):
    """Production runs on PostgreSQL: the migrations alone must build every table there."""
    assert schema_state(empty_postgresql)[0] == set()
    fhirgate("db", "upgrade", database_url=empty_postgresql)
    assert_schema_at_head(empty_postgresql)


def test_db_upgrade_builds_schema_on_empty_sqlite(empty_sqlite):
    """`make run` uses SQLite: the migrations alone must build every table there too."""
    fhirgate("db", "upgrade", database_url=empty_sqlite)
    assert_schema_at_head(empty_sqlite)


def test_autogenerate_finds_no_difference_between_models_and_migrations(app):
    """A model change without a migration would leave production's schema behind the code."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], "models and migrations differ:\n" + "\n".join(map(repr, diff))


def test_downgrade_to_base_then_upgrade_to_head(empty_sqlite):
    """Every migration's downgrade must run, and the schema must come back after it."""
    fhirgate("db", "upgrade", database_url=empty_sqlite)
    fhirgate("db", "downgrade", "base", database_url=empty_sqlite)
    tables, revision = schema_state(empty_sqlite)
    assert tables & model_tables() == set(), f"tables left after downgrade: {sorted(tables & model_tables())}"
    assert revision is None
    fhirgate("db", "upgrade", database_url=empty_sqlite)
    assert_schema_at_head(empty_sqlite)
