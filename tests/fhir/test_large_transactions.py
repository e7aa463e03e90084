"""Large transaction Bundles: validation in the helper process, rows streamed early (PostgreSQL).

Both speed-ups must be invisible: the same responses, the same errors, all-or-nothing.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.extensions import db
from fhir import validation_helper
from fhir.model_classes import model_class
from fhir.storage import writes
from fhir.validation import model_error, validate_resource
from tests.conftest import count_stored
from tests.fhir.test_bundles import bundle, entry

INVALID = [
    {"resourceType": "Patient", "birthDate": "not-a-date"},
    {"resourceType": "Patient", "gender": 42},
    {"resourceType": "Patient", "unknownElement": True},
    {"resourceType": "Observation", "status": "final"},  # code is required
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "valueString": "a",
        "valueBoolean": True,
    },
    {"resourceType": "Condition", "subject": {"reference": 7}},
]


OTHER_WRITERS_VERSION = """
    INSERT INTO fhir_history (hospital_id, resource_type, id, version_id, last_updated, method, content)
    VALUES ('general', 'Patient', 'p10', 1, CURRENT_TIMESTAMP, 'PUT', '{}')
"""


@pytest.fixture
def background_copies(app, monkeypatch):
    """How many background COPYs started; asserts they did on PostgreSQL (SQLite has none)."""
    started = []
    original = writes._BackgroundCopy.start

    def start(self):
        started.append(self)
        original(self)

    monkeypatch.setattr(writes._BackgroundCopy, "start", start)
    yield started
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    assert bool(started) == postgres


@pytest.fixture
def helper():
    assert validation_helper.helper.wait_ready(60), "the validation helper did not start"
    return validation_helper.helper


def patient(i: int) -> dict:
    return {"resourceType": "Patient", "id": f"p{i}", "name": [{"family": f"Family{i}"}], "gender": "female"}


def observation(i: int, patient_ref: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": patient_ref},
        "valueQuantity": {
            "value": 60 + i % 40,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def put(resource: dict) -> dict:
    return entry(resource, method="PUT", url=f"{resource['resourceType']}/{resource['id']}")


def test_the_helper_reaches_the_same_verdicts_as_inline_validation(helper):
    valid = [patient(i) for i in range(40)] + [observation(i, "Patient/p1") for i in range(10)]
    resources = valid + [dict(r) for r in INVALID]
    before = helper.verdicts_used
    with helper.validating(resources):
        for resource in resources:
            inline = model_error(model_class(resource["resourceType"]), resource)
            try:
                validate_resource(resource)
                outcome = None
            except Exception as error:  # noqa: BLE001 — compared below
                outcome = error
            if inline is None:
                assert outcome is None, resource
            else:
                assert outcome is not None and outcome.status == inline.status, resource
                assert outcome.issues == inline.issues, resource
    assert helper.verdicts_used - before == len(resources)


def test_a_verdict_applies_only_to_the_object_that_was_sent(helper):
    resources = [patient(i) for i in range(40)]
    with helper.validating(resources):
        lookalike = dict(resources[0], birthDate="not-a-date")
        resources[0] = lookalike  # an equal-looking object that was never sent is validated here
        with pytest.raises(Exception, match="birthDate"):
            validate_resource(lookalike)


def test_a_helper_that_dies_mid_bundle_leaves_validation_to_the_worker(helper, caplog):
    resources = [patient(i) for i in range(60)] + [dict(INVALID[0])]
    with helper.validating(resources):
        validate_resource(resources[0])
        helper._process.kill()
        helper._process.wait()
        for resource in resources[1:60]:
            validate_resource(resource)
        with pytest.raises(Exception, match="birthDate"):
            validate_resource(resources[60])
    assert "validation helper" in caplog.text
    assert helper.wait_ready(60)  # and it comes back


def test_a_large_transaction_stores_every_entry_once(fhir, app, helper, background_copies):
    entries = []
    for i in range(150):
        entries.append(put(patient(i)))
        entries.append(put(observation(i, f"Patient/p{i}")))
    before = helper.verdicts_used
    response = fhir.post("/", bundle("transaction", *entries), headers={"Prefer": "return=minimal"})
    assert response.status_code == 200, response.get_json()
    assert helper.verdicts_used - before == 300
    statuses = [e["response"]["status"] for e in response.get_json()["entry"]]
    assert statuses == ["201 Created"] * 300
    with app.app_context():
        assert count_stored("fhir_resources") == 300
        assert count_stored("fhir_history") == 300
        assert count_stored("fhir_compartments") == 300
        db.session.rollback()
    assert fhir.ids("Observation?patient=Patient/p149&code=http://loinc.org|8867-4") == ["o149"]
    assert fhir.search("Patient?_summary=count")["total"] == 150
    assert fhir.get("/Observation/o0/_history/1").status_code == 200


def test_an_invalid_entry_late_in_a_large_transaction_stores_nothing(fhir, app, helper, background_copies):
    entries = [put(patient(i)) for i in range(300)]
    bad = {"resourceType": "Patient", "id": "bad", "birthDate": "not-a-date"}
    entries[260] = put(bad)
    response = fhir.post("/", bundle("transaction", *entries))
    assert response.status_code == 400
    issue = response.get_json()["issue"][0]
    inline = model_error(model_class("Patient"), bad).issues[0]
    assert issue["diagnostics"] == f"Bundle entry 260: {inline.diagnostics}"
    assert issue["expression"] == ["Patient.birthDate"]
    with app.app_context():
        assert count_stored("fhir_resources") == 0
        assert count_stored("fhir_history") == 0
        assert count_stored("fhir_idx_string") == 0
        db.session.rollback()


def test_a_conflict_met_by_rows_already_sent_is_409_and_stores_nothing(fhir, app, background_copies):
    """Another writer created Patient/p10's first version meanwhile: the unique key catches it."""
    with app.app_context():
        db.session.execute(text(OTHER_WRITERS_VERSION))
        db.session.commit()
    entries = [put(patient(i)) for i in range(writes.HAND_OFF_RESOURCES + 50)]
    response = fhir.post("/", bundle("transaction", *entries))
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["issue"][0]["code"] == "conflict"
    with app.app_context():
        assert count_stored("fhir_resources") == 0
        assert count_stored("fhir_history") == 1  # only the other writer's row
        assert count_stored("fhir_idx_string") == 0
        db.session.rollback()
    # the connection is clean afterwards: the next request works
    assert fhir.post("/", bundle("transaction", put(patient(1000)))).status_code == 200
