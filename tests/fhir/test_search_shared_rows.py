"""Parameters that repeat others (``patient`` = ``subject`` of type Patient, ``combo-code`` =
``code | component-code``) are stored once and must search exactly as their definitions say."""

from __future__ import annotations

import pytest

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def quantity(value, code="mm[Hg]"):
    return {"value": value, "unit": code, "system": UCUM, "code": code}


@pytest.fixture
def records(fhir):
    anna = fhir.create({"resourceType": "Patient", "name": [{"family": "Anna"}]})
    group = fhir.create({"resourceType": "Group", "type": "person", "actual": True})
    doctor = fhir.create({"resourceType": "Practitioner", "name": [{"family": "Grey"}]})
    panel = fhir.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "subject": {"reference": f"Patient/{anna['id']}"},
            "component": [
                {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": quantity(128)},
                {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": quantity(84)},
            ],
        }
    )
    weight = fhir.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
            "subject": {"reference": f"Patient/{anna['id']}"},
            "valueQuantity": quantity(71, "kg"),
        }
    )
    of_group = fhir.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "subject": {"reference": f"Group/{group['id']}"},
            "valueQuantity": quantity(140),
        }
    )
    visit = fhir.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{anna['id']}"},
            "participant": [{"individual": {"reference": f"Practitioner/{doctor['id']}"}}],
        }
    )
    return {"anna": anna["id"], "group": group["id"], "doctor": doctor["id"], "panel": panel["id"],
            "weight": weight["id"], "of_group": of_group["id"], "visit": visit["id"]}  # fmt: skip


def test_patient_is_the_subject_when_it_is_a_patient(fhir, records):
    anna, group = records["anna"], records["group"]
    assert sorted(fhir.ids(f"Observation?patient={anna}")) == sorted([records["panel"], records["weight"]])
    assert fhir.ids(f"Observation?patient=Patient/{anna}") == fhir.ids(f"Observation?patient={anna}")
    assert fhir.ids(f"Observation?patient={group}") == []  # a Group subject is no patient
    assert fhir.ids(f"Observation?subject=Group/{group}") == [records["of_group"]]
    assert fhir.ids("Observation?patient:missing=true") == [records["of_group"]]
    assert fhir.ids(f"Observation?patient.name=Anna&code={LOINC}|29463-7") == [records["weight"]]


def test_includes_through_a_shared_parameter(fhir, records):
    included = fhir.search(f"Observation?_id={records['weight']}&_include=Observation:patient")
    assert {e["resource"]["resourceType"] for e in included["entry"]} == {"Observation", "Patient"}
    reverse = fhir.search(f"Patient?_id={records['anna']}&_revinclude=Observation:patient")
    ids = {e["resource"]["id"] for e in reverse["entry"]}
    assert ids == {records["anna"], records["panel"], records["weight"]}
    doctor = fhir.search(f"Encounter?practitioner={records['doctor']}&_include=Encounter:practitioner")
    assert {e["resource"]["id"] for e in doctor["entry"]} == {records["visit"], records["doctor"]}


def test_combo_parameters_search_code_and_components(fhir, records):
    systolic = sorted([records["panel"], records["of_group"]])  # a component, and a main code
    assert sorted(fhir.ids(f"Observation?combo-code={LOINC}|8480-6")) == systolic
    assert fhir.ids(f"Observation?code={LOINC}|8480-6") == [records["of_group"]]
    assert sorted(fhir.ids("Observation?combo-value-quantity=gt100")) == systolic
    assert fhir.ids("Observation?value-quantity=gt100") == [records["of_group"]]
    assert fhir.ids("Observation?combo-value-quantity=70|http://unitsofmeasure.org|mm[Hg]") == []
    assert fhir.ids("Observation?_sort=-combo-value-quantity&_count=1") == [records["of_group"]]
