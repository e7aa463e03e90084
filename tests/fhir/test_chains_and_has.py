"""Chains of more than one link and reverse chaining (FHIR R4B search.html#chaining, #has):
``subject:Patient.organization.name``, ``_has:Observation:patient:code``, nested ``_has``, each
link within what the searcher may see."""

from __future__ import annotations

import pytest

from tests.fhir.conftest import patient_fhir_client

LOINC = "http://loinc.org"


@pytest.fixture
def records(fhir):
    fhir.put("/Organization/north", {"resourceType": "Organization", "id": "north", "name": "North Clinic"})
    fhir.put("/Organization/south", {"resourceType": "Organization", "id": "south", "name": "South Clinic"})
    fhir.put(
        "/Practitioner/doc",
        {"resourceType": "Practitioner", "id": "doc", "name": [{"family": "House"}]},
    )
    for pid, org in (("anna", "north"), ("bob", "south"), ("cleo", "north")):
        patient = {
            "resourceType": "Patient",
            "id": pid,
            "managingOrganization": {"reference": f"Organization/{org}"},
        }
        if pid == "anna":
            patient["generalPractitioner"] = [{"reference": "Practitioner/doc"}]
        fhir.put(f"/Patient/{pid}", patient)
    obs = {}
    for pid, code in (("anna", "8867-4"), ("bob", "8867-4"), ("cleo", "29463-7")):
        obs[pid] = fhir.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "subject": {"reference": f"Patient/{pid}"},
            }
        )["id"]
    report = fhir.create(
        {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": {"text": "panel"},
            "subject": {"reference": "Patient/anna"},
            "result": [{"reference": f"Observation/{obs['anna']}"}],
        }
    )["id"]
    return {"obs": obs, "report": report}


def test_a_two_level_chain_follows_both_references(fhir, records):
    found = fhir.ids("Observation?subject:Patient.organization.name=North")
    assert sorted(found) == sorted([records["obs"]["anna"], records["obs"]["cleo"]])
    assert fhir.ids("Observation?patient.organization.name=South") == [records["obs"]["bob"]]
    # three links: the report whose result's subject's organization is North
    assert fhir.ids("DiagnosticReport?result.subject:Patient.organization.name=North") == [records["report"]]
    assert fhir.ids("Observation?subject:Patient.general-practitioner:Practitioner.name=House") == [
        records["obs"]["anna"]
    ]
    assert fhir.ids("Observation?patient.organization.name=Nowhere") == []


def test_a_chain_longer_than_three_links_is_refused(fhir, records):
    response = fhir.get("/DiagnosticReport?result.subject:Patient.organization.partof.name=x")
    assert response.status_code == 400
    assert "at most 3" in response.get_json()["issue"][0]["diagnostics"]


def test_has_finds_the_resources_others_point_at(fhir, records):
    assert sorted(fhir.ids(f"Patient?_has:Observation:patient:code={LOINC}|8867-4")) == ["anna", "bob"]
    assert fhir.ids("Patient?_has:Observation:patient:code=29463-7") == ["cleo"]
    assert fhir.ids("Patient?_has:Observation:subject:code=nothing") == []
    # _has with a chain inside and a nested _has
    assert fhir.ids("Organization?_has:Patient:organization:_has:Observation:patient:code=29463-7") == [
        "north"
    ]
    assert fhir.ids("Patient?_has:Observation:patient:_has:DiagnosticReport:result:status=final") == ["anna"]
    assert fhir.ids(f"Patient?_has:Observation:patient:_id={records['obs']['bob']}") == ["bob"]
    # ANDed with other parameters and with each other
    assert fhir.ids("Patient?_has:Observation:patient:code=8867-4&organization=Organization/north") == [
        "anna"
    ]


@pytest.mark.parametrize(
    "query",
    [
        "Patient?_has:Observation:patient",  # no parameter
        "Patient?_has:Nothing:patient:code=x",  # no such type
        "Patient?_has:Observation:code:code=x",  # not a reference
        "Patient?_has:Observation:performer:unknown=x",  # no such parameter of Observation
        "Organization?_has:Observation:patient:code=x",  # Observation.patient cannot point at Organization
    ],
)
def test_a_malformed_has_is_refused_not_ignored(fhir, records, query):
    response = fhir.get(f"/{query}")
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_a_patient_token_chains_and_has_only_within_its_own_compartment(fhir, make, client, records):
    anna = patient_fhir_client(make, client, fhir.hospital, "anna")
    # Bob's observation is outside Anna's reach: a _has through it finds nothing of hers
    assert anna.ids("Patient?_has:Observation:patient:code=8867-4") == ["anna"]
    assert anna.ids("Patient?_has:Observation:patient:code=29463-7") == []
    # a chain from her observations to her own patient record and its organization
    assert anna.ids("Observation?patient.organization.name=North") == [records["obs"]["anna"]]
    assert anna.ids("Observation?patient.organization.name=South") == []
