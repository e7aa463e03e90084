"""``:of-type`` on Identifier parameters and ``:identifier`` on references (FHIR R4B
search.html#token, #reference): found through rows of their own, never ignored."""

from __future__ import annotations

import pytest

from tests.fhir.conftest import patient_fhir_client

V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
MRN = "https://hospital.example/mrn"


@pytest.fixture
def records(fhir):
    def patient(pid: str, kind: str, value: str) -> None:
        identifier = {"type": {"coding": [{"system": V2, "code": kind}]}, "system": MRN, "value": value}
        fhir.put(f"/Patient/{pid}", {"resourceType": "Patient", "id": pid, "identifier": [identifier]})

    patient("anna", "MR", "123")
    patient("bob", "DL", "123")  # the same value, another type
    by_identifier = fhir.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"type": "Patient", "identifier": {"system": MRN, "value": "123"}},
        }
    )["id"]
    group_subject = fhir.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "y"},
            "subject": {"type": "Group", "identifier": {"system": MRN, "value": "123"}},
        }
    )["id"]
    # a literal reference names the type too, without a type element
    group_literal = fhir.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "z"},
            "subject": {"reference": "Group/g1", "identifier": {"system": MRN, "value": "123"}},
        }
    )["id"]
    return {"by_identifier": by_identifier, "group_subject": group_subject, "group_literal": group_literal}


def test_of_type_matches_type_and_value_together(fhir, records):
    assert fhir.ids(f"Patient?identifier:of-type={V2}|MR|123") == ["anna"]
    assert fhir.ids(f"Patient?identifier:of-type={V2}|DL|123") == ["bob"]
    assert fhir.ids(f"Patient?identifier:of-type={V2}|MR|999") == []
    assert fhir.ids("Patient?identifier:of-type=http://other|MR|123") == []


@pytest.mark.parametrize("value", ["MR|123", f"{V2}|MR", f"{V2}||123", "|MR|123"])
def test_of_type_needs_all_three_parts(fhir, records, value):
    assert fhir.get(f"/Patient?identifier:of-type={value}").status_code == 400


def test_of_type_applies_to_identifier_parameters_only(fhir, records):
    assert fhir.get(f"/Patient?gender:of-type={V2}|MR|123").status_code == 400


def test_identifier_modifier_matches_the_references_identifier(fhir, records):
    found = fhir.ids(f"Observation?subject:identifier={MRN}|123")
    assert sorted(found) == sorted(
        [records["by_identifier"], records["group_subject"], records["group_literal"]]
    )
    # patient: only references typed Patient (or untyped)
    assert fhir.ids(f"Observation?patient:identifier={MRN}|123") == [records["by_identifier"]]
    assert fhir.ids("Observation?subject:identifier=123") != []
    assert fhir.ids(f"Observation?subject:identifier={MRN}|999") == []
    assert fhir.get("/Observation?code:identifier=123").status_code == 400  # not a reference


def test_a_patient_token_finds_nothing_outside_its_compartment_by_identifier(fhir, make, client, records):
    anna = patient_fhir_client(make, client, fhir.hospital, "anna")
    # logical references by identifier put nothing in Anna's compartment: she sees none of them
    assert anna.ids(f"Observation?subject:identifier={MRN}|123") == []
    assert anna.ids(f"Patient?identifier:of-type={V2}|DL|123") == []
    assert anna.ids(f"Patient?identifier:of-type={V2}|MR|123") == ["anna"]
