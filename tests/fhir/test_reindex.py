"""``fhirgate reindex`` rebuilds index and compartment rows that definitions of an earlier release
left behind (the move to R4B's: Task left the patient compartment, new parameters appeared)."""

from __future__ import annotations

from sqlalchemy import text

from app.extensions import db
from fhir.search.registry import patient_compartment_params
from tests.fhir.test_isolation_matrix import load_hospital

TABLES = ("fhir_idx_string", "fhir_idx_token", "fhir_idx_reference", "fhir_idx_date", "fhir_idx_number",
          "fhir_idx_quantity", "fhir_idx_uri", "fhir_compartments")  # fmt: skip


def rows(hospital: str) -> dict[str, list[tuple]]:
    return {
        table: sorted(
            tuple("" if value is None else str(value) for value in row)
            for row in db.session.execute(
                text(f"SELECT * FROM {table} WHERE hospital_id = :h"), {"h": hospital}
            )  # noqa: S608
        )
        for table in TABLES
    }


def test_reindex_rebuilds_what_earlier_definitions_left_and_only_that(app, make, fhir):
    make.hospital("h1")
    load_hospital(app, "h1", seed=3)
    task = fhir.put(
        "/Task/t1",
        {
            "resourceType": "Task",
            "id": "t1",
            "status": "ready",
            "intent": "order",
            "for": {"reference": "Patient/x"},
        },
    ).get_json()
    with app.app_context():
        fresh = rows("h1")
        assert patient_compartment_params("Task") == ()  # R4B: no Task in the patient compartment
        # What R4's definitions wrote: Task in a patient compartment, a parameter R4B does not have.
        db.session.execute(text("INSERT INTO fhir_compartments VALUES ('general', 'x', 'Task', 't1')"))
        db.session.execute(
            text(
                "INSERT INTO fhir_compartments (hospital_id, patient_id, resource_type, resource_id) "
                "SELECT hospital_id, 'someone', resource_type, resource_id FROM fhir_compartments "
                "WHERE hospital_id = 'h1' LIMIT 3"
            )
        )
        db.session.execute(text("DELETE FROM fhir_idx_token WHERE hospital_id = 'h1' AND param = 'code'"))
        db.session.commit()
        assert rows("h1") != fresh

    result = app.test_cli_runner().invoke(args=["reindex", "--hospital", "h1", "--hospital", "general"])
    assert result.exit_code == 0, result.output
    assert "h1: reindexed" in result.output and "general: reindexed" in result.output
    with app.app_context():
        assert rows("h1") == fresh
        stale = db.session.execute(text("SELECT COUNT(*) FROM fhir_compartments WHERE resource_id = 't1'"))
        assert stale.scalar_one() == 0
    assert task["id"] == "t1"


def test_reindex_of_an_unknown_hospital_is_refused(app):
    result = app.test_cli_runner().invoke(args=["reindex", "--hospital", "nowhere"])
    assert result.exit_code != 0 and "no hospital nowhere" in result.output
