"""Compartment search (FHIR R4B search.html#compartments): ``GET Patient/{id}/{type}?params``
finds the type's resources in that Patient's compartment, pages, and binds patient tokens to
their own compartment like every other search."""

from __future__ import annotations

import pytest

from tests.fhir.conftest import patient_fhir_client


def observation(patient: str, code: str, performer: str | None = None) -> dict:
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
    }
    if performer:
        body["performer"] = [{"reference": f"Patient/{performer}"}]
    return body


@pytest.fixture
def records(fhir):
    for pid in ("anna", "bob"):
        fhir.put(f"/Patient/{pid}", {"resourceType": "Patient", "id": pid})
    anna = [fhir.create(observation("anna", code))["id"] for code in ("8867-4", "8867-4", "29463-7")]
    # Bob's, but performed by Anna: in both compartments (Observation's are subject and performer)
    shared = fhir.create(observation("bob", "8867-4", performer="anna"))["id"]
    bob = [fhir.create(observation("bob", "8867-4"))["id"]]
    return {"anna": anna, "bob": bob, "shared": shared}


def matches(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def test_a_compartment_search_finds_the_types_members_of_that_patients_compartment(fhir, records):
    found = fhir.search("Patient/anna/Observation")
    assert sorted(matches(found)) == sorted([*records["anna"], records["shared"]])
    assert found["total"] == 4
    self_url = next(link["url"] for link in found["link"] if link["relation"] == "self")
    assert self_url.endswith("/Patient/anna/Observation")

    narrowed = fhir.search("Patient/anna/Observation?code=http://loinc.org|29463-7")
    assert matches(narrowed) == [records["anna"][2]]
    assert sorted(matches(fhir.search("Patient/bob/Observation"))) == sorted(
        [*records["bob"], records["shared"]]
    )


def test_a_compartment_search_pages_within_the_compartment(fhir, records):
    bundle = fhir.search("Patient/anna/Observation?_count=1")
    seen = matches(bundle)
    while following := next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None):
        response = fhir.client.get(following, headers=fhir.headers())
        assert response.status_code == 200
        bundle = response.get_json()
        seen += matches(bundle)
    assert sorted(seen) == sorted([*records["anna"], records["shared"]])


def test_a_type_outside_the_compartment_or_an_unknown_patient_is_refused(fhir, records):
    assert fhir.get("/Patient/anna/Practitioner").status_code == 400
    assert fhir.get("/Patient/anna/Nonsense").status_code == 404
    assert fhir.get("/Patient/nobody/Observation").status_code == 404


def test_a_patient_token_searches_its_own_compartment_and_no_other(fhir, make, client, records):
    anna = patient_fhir_client(make, client, fhir.hospital, "anna")
    assert sorted(matches(anna.search("Patient/anna/Observation"))) == sorted(
        [*records["anna"], records["shared"]]
    )
    response = anna.get("/Patient/bob/Observation")
    assert response.status_code == 404
    assert all(rid not in response.get_data(as_text=True) for rid in records["bob"])


def test_the_capability_statement_declares_the_patient_compartment(fhir):
    statement = fhir.client.get(f"{fhir.base}/metadata").get_json()
    assert statement["rest"][0]["compartment"] == ["http://hl7.org/fhir/CompartmentDefinition/patient"]
