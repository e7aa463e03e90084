"""A hospital's newest history ``seq`` (``fhir.storage.newest_seq``): its own rows decide, and on
PostgreSQL another hospital's later rows are never walked to find it."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import text

from app.extensions import db
from fhir.storage.newest_seq import MAX_SEQ, NEWEST_SEQ_SQL, newest_seq

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


def test_the_text_form_bounds_the_same_rows():
    assert str(MAX_SEQ) in NEWEST_SEQ_SQL


@pytest.mark.usefixtures("postgres_only")
def test_a_quiet_hospitals_newest_row_is_one_step_into_its_index(app, make):
    """Written as ``max(seq) WHERE hospital_id = $1``, the generic plan walked the primary key
    backwards past every row another hospital wrote since: 450 ms behind two million."""
    quiet, busy = make.hospital("quiet"), make.hospital("busy")
    with app.app_context():
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
        connection = db.session.connection()
        connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")  # until the rollback
        connection.exec_driver_sql(f"PREPARE newest AS {NEWEST_SEQ_SQL}")
        plans = [
            connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE newest('{quiet}')"
            ).scalar(),
            connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                + str(newest_seq(quiet).compile(connection, compile_kwargs={"literal_binds": True}))
            ).scalar(),
        ]
        connection.exec_driver_sql("DEALLOCATE newest")  # the pooled connection's, beyond the rollback
        db.session.rollback()
    for plan in plans:
        nodes = _nodes(plan[0]["Plan"] if isinstance(plan, list) else orjson.loads(plan)[0]["Plan"])
        scans = [node for node in nodes if "Scan" in node["Node Type"]]
        assert [node.get("Index Name") for node in scans] == ["ix_fhir_history_hospital_seq"]
        assert all(node.get("Rows Removed by Filter", 0) == 0 for node in nodes)
        assert plan_buffers(nodes) < 20  # one descent, not 20,000 rows


def _nodes(plan: dict) -> list[dict]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


def plan_buffers(nodes: list[dict]) -> int:
    top = nodes[0]
    return top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
