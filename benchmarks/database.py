"""The dedicated benchmark database: created empty, analysed after loading, dropped at the end."""

from __future__ import annotations

import psycopg
from psycopg import sql

from benchmarks.settings import PROTECTED_DATABASES, Settings
from fhir.storage.tables import INDEX_TABLES


def _admin(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(settings.admin_dsn, autocommit=True, connect_timeout=10)


def _drop(cur, name: str) -> None:
    if name in PROTECTED_DATABASES:  # belt and braces: never the test or system databases
        raise ValueError(f"refusing to drop {name}")
    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def create(settings: Settings) -> bool:
    """Create the database empty; True if a leftover one (e.g. from BENCH_KEEP=1) was dropped first."""
    with _admin(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.database,))
        existed = cur.fetchone() is not None
        _drop(cur, settings.database)
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.database)))
    return existed


def drop(settings: Settings) -> None:
    with _admin(settings) as conn, conn.cursor() as cur:
        _drop(cur, settings.database)


def _connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(f"{settings.server}/{settings.database}", autocommit=True, connect_timeout=10)


def analyze(settings: Settings) -> None:
    """What autovacuum does shortly after a bulk load: fresh planner statistics."""
    with _connect(settings) as conn:
        conn.execute("ANALYZE")


def facts(settings: Settings, hospital: str) -> dict:
    """Server version, database size and what the store holds, to check the load was complete."""
    with _connect(settings) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        by_type = dict(
            conn.execute(
                "SELECT resource_type, count(*) FROM fhir_resources WHERE hospital_id = %s AND NOT deleted"
                " GROUP BY resource_type",
                (hospital,),
            ).fetchall()
        )
        versions = conn.execute(
            "SELECT count(*) FROM fhir_history WHERE hospital_id = %s", (hospital,)
        ).fetchone()[0]
        index_rows = 0
        for table in INDEX_TABLES.values():
            query = sql.SQL("SELECT count(*) FROM {} WHERE hospital_id = %s").format(
                sql.Identifier(table.name)
            )
            index_rows += conn.execute(query, (hospital,)).fetchone()[0]
        shared_buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
    return {
        "server_version": version,
        "size_bytes": size,
        "by_type": by_type,
        "versions": versions,
        "index_rows": index_rows,
        "shared_buffers": shared_buffers,
    }
