"""Transaction rules clients rely on (FHIR R4B http.html#trules): conditional references are
resolved whatever their criteria contain, and no resource is written twice in one transaction."""

from __future__ import annotations

import pytest

from tests.conftest import count_stored
from tests.fhir.test_bundles import bundle, entry, observation, patient

MRN = "https://hospital.example/mrn"


def test_a_conditional_reference_with_a_url_system_is_resolved_not_stored_literally(fhir, app):
    known = fhir.create(patient("Known", identifier=[{"system": MRN, "value": "123"}]))
    response = fhir.post("/", bundle("transaction", entry(observation(f"Patient?identifier={MRN}|123"))))

    assert response.status_code == 200, response.get_json()
    created = response.get_json()["entry"][0]["resource"]
    assert created["subject"]["reference"] == f"Patient/{known['id']}"
    # and it is in the patient's compartment: a search by patient finds it
    assert fhir.ids(f"Observation?patient={known['id']}") == [created["id"]]


def test_a_percent_encoded_conditional_reference_is_resolved(fhir):
    known = fhir.create(patient("Known", identifier=[{"system": MRN, "value": "9 9"}]))
    encoded = "Patient?identifier=https%3A%2F%2Fhospital.example%2Fmrn%7C9%209"
    response = fhir.post("/", bundle("transaction", entry(observation(encoded))))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{known['id']}"


@pytest.mark.parametrize("how_many", [0, 2])
def test_a_url_conditional_reference_matching_none_or_several_fails_the_transaction(fhir, app, how_many):
    for _ in range(how_many):
        fhir.create(patient("Twin", identifier=[{"system": MRN, "value": "7"}]))
    with app.app_context():
        before = count_stored("fhir_resources")
    response = fhir.post("/", bundle("transaction", entry(observation(f"Patient?identifier={MRN}|7"))))

    assert response.status_code == 412
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert f"matches {how_many} resources" in outcome["issue"][0]["diagnostics"]
    with app.app_context():
        assert count_stored("fhir_resources") == before


def test_absolute_and_relative_references_with_a_query_are_not_conditional(fhir):
    absolute = "https://other.example/fhir/Patient?identifier=x|1"
    response = fhir.post("/", bundle("transaction", entry(observation(absolute))))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["entry"][0]["resource"]["subject"]["reference"] == absolute


def test_a_transaction_that_puts_one_resource_twice_fails_and_stores_nothing(fhir, app):
    response = fhir.post(
        "/",
        bundle(
            "transaction",
            entry(patient("First", id="twice"), method="PUT", url="Patient/twice"),
            entry(patient("Second", id="twice"), method="PUT", url="Patient/twice"),
        ),
    )

    assert response.status_code == 400
    assert "a transaction may write each resource once" in response.get_json()["issue"][0]["diagnostics"]
    assert fhir.get("/Patient/twice").status_code == 404


def test_a_transaction_that_deletes_and_updates_one_resource_fails(fhir):
    existing = fhir.create(patient("Kept"))
    response = fhir.post(
        "/",
        bundle(
            "transaction",
            entry(method="DELETE", url=f"Patient/{existing['id']}"),
            entry({**existing, "active": False}, method="PUT", url=f"Patient/{existing['id']}"),
        ),
    )

    assert response.status_code == 400
    assert "active" not in fhir.get(f"/Patient/{existing['id']}").get_json()


def test_a_conditional_update_resolving_to_a_resource_another_entry_writes_fails(fhir):
    existing = fhir.create(patient("Kept", identifier=[{"system": MRN, "value": "55"}]))
    response = fhir.post(
        "/",
        bundle(
            "transaction",
            entry({**existing, "gender": "female"}, method="PUT", url=f"Patient/{existing['id']}"),
            entry(
                patient("Other", identifier=[{"system": MRN, "value": "55"}]),
                method="PUT",
                url=f"Patient?identifier={MRN}|55",
            ),
        ),
    )

    assert response.status_code == 400
    assert "gender" not in fhir.get(f"/Patient/{existing['id']}").get_json()


def test_a_batch_may_still_write_one_resource_in_two_entries(fhir):
    response = fhir.post(
        "/",
        bundle(
            "batch",
            entry(patient("First", id="again"), method="PUT", url="Patient/again"),
            entry(patient("Second", id="again"), method="PUT", url="Patient/again"),
        ),
    )

    statuses = [e["response"]["status"] for e in response.get_json()["entry"]]
    assert statuses == ["201 Created", "200 OK"]
