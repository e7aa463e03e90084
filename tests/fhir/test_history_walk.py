"""Walking one hospital's history newest first (``fhir.storage.history_walk``): its own rows
decide, and on PostgreSQL another hospital's later rows are never walked past — neither for the
newest ``seq`` (search snapshots, bulk export) nor for a page of ``_history``."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import event, text

from app.extensions import db
from fhir.storage.history_walk import MAX_SEQ, NEWEST_SEQ_SQL, newest_seq
from fhir.storage.sql import SqlRepository

OWN_ROWS, OTHERS_ROWS = 5_000, 20_000


def _newest(app, hospital_id: str) -> int | None:
    with app.app_context():
        return db.session.execute(newest_seq(hospital_id)).scalar()


def test_the_hospitals_own_newest_row_decides(app, make):
    quiet, busy, empty = make.hospital("quiet"), make.hospital("busy"), make.hospital("empty")
    make.patient(quiet, "q1")
    make.patient(quiet, "q2")
    quiet_newest = _newest(app, quiet)
    for n in range(3):
        make.patient(busy, f"b{n}")
    assert quiet_newest is not None
    assert _newest(app, quiet) == quiet_newest  # the busy hospital's later rows change nothing
    assert _newest(app, busy) > quiet_newest
    assert _newest(app, empty) is None
    with app.app_context():
        everything = db.session.execute(
            text("SELECT hospital_id, max(seq) FROM fhir_history GROUP BY hospital_id")
        ).all()
    assert dict(everything) == {quiet: quiet_newest, busy: _newest(app, busy)}


def test_history_pages_hold_the_hospitals_rows_only_newest_first(app, make):
    quiet, busy = make.hospital("quiet"), make.hospital("busy")
    for n in range(5):
        make.patient(quiet, f"q{n}")
        make.patient(busy, f"b{n}")
    with app.app_context():
        repository = SqlRepository(db.session(), quiet)
        first = repository.history(count=3)
        rest = repository.history(before_seq=first.entries[-1].seq, count=10)
        typed = repository.history("Patient", count=10)
        one = repository.history("Patient", "q2")
    seqs = [entry.seq for entry in first.entries + rest.entries]
    assert [entry.resource.id for entry in first.entries + rest.entries] == [f"q{n}" for n in (4, 3, 2, 1, 0)]
    assert seqs == sorted(seqs, reverse=True)
    assert [entry.resource.id for entry in typed.entries] == [f"q{n}" for n in (4, 3, 2, 1, 0)]
    assert [entry.resource.id for entry in one.entries] == ["q2"]


def test_the_text_form_bounds_the_same_rows():
    assert str(MAX_SEQ) in NEWEST_SEQ_SQL


@contextlib.contextmanager
def _statements(engine):
    """The statements (and their parameters) the engine runs meanwhile."""
    seen: list[tuple[str, object]] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_a_quiet_hospitals_newest_rows_are_read_from_its_own_index_entries(app, make):
    """Written as ``WHERE hospital_id = $1 ORDER BY seq DESC`` (or ``max(seq)``), the plan walked
    the primary key backwards past every row another hospital wrote since: 450 ms for the newest
    seq and 4 s for a page of ``_history`` behind two million."""
    quiet, busy = make.hospital("quiet"), make.hospital("busy")
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL's plans")
        for hospital, rows in ((quiet, OWN_ROWS), (busy, OTHERS_ROWS)):  # the busy one's are newer
            db.session.execute(
                text(
                    "INSERT INTO fhir_history (hospital_id, resource_type, id, version_id, last_updated,"
                    " method, content) SELECT :hospital, 'AuditEvent', 'a' || g, 1, now(), 'POST', '{}'"
                    " FROM generate_series(1, :rows) AS g"
                ),
                {"hospital": hospital, "rows": rows},
            )
        db.session.execute(text("ANALYZE fhir_history"))
        db.session.commit()
        with _statements(db.engine) as seen:
            repository = SqlRepository(db.session(), quiet)
            repository.history()
            repository.history("AuditEvent")
            repository.history(before_seq=repository.history(count=2).entries[-1].seq)
            db.session.execute(newest_seq(quiet)).scalar()
        walks = [(statement, parameters) for statement, parameters in seen if "fhir_history" in statement]
        connection = db.session.connection()
        explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
        plans = [
            connection.exec_driver_sql(explain + statement, parameters).scalar()
            for statement, parameters in walks
        ]
        connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")  # until the rollback
        connection.exec_driver_sql(f"PREPARE newest AS {NEWEST_SEQ_SQL}")
        plans.append(connection.exec_driver_sql(f"{explain}EXECUTE newest('{quiet}')").scalar())
        connection.exec_driver_sql("DEALLOCATE newest")  # the pooled connection's, beyond the rollback
        db.session.rollback()
    assert len(plans) == 6
    for plan in plans:
        nodes = _nodes(plan[0]["Plan"])
        scans = [node for node in nodes if "Scan" in node["Node Type"]]
        assert {node.get("Index Name") for node in scans} <= {
            "ix_fhir_history_hospital_seq",
            "ix_fhir_history_type_seq",
        }, scans
        assert all(node.get("Rows Removed by Filter", 0) == 0 for node in nodes)
        assert nodes[0].get("Shared Hit Blocks", 0) + nodes[0].get("Shared Read Blocks", 0) < 50


def _nodes(plan: dict) -> list[dict]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]
