"""Search on Condition, Encounter and MedicationRequest: each parameter type they carry."""

from __future__ import annotations

import pytest

SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@pytest.fixture
def chart(fhir):
    patient = fhir.create({"resourceType": "Patient", "name": [{"family": "Chart"}]})
    other = fhir.create({"resourceType": "Patient", "name": [{"family": "Other"}]})
    doctor = fhir.create({"resourceType": "Practitioner", "name": [{"family": "Grey"}]})
    ref = {"reference": f"Patient/{patient['id']}"}
    diabetes = fhir.create(
        {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                ]
            },
            "code": {
                "coding": [{"system": SNOMED, "code": "44054006", "display": "Diabetes mellitus type 2"}]
            },
            "subject": ref,
            "onsetDateTime": "2015-03",
            "recordedDate": "2015-04-01",
        }
    )
    asthma = fhir.create(
        {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}
                ]
            },
            "code": {"coding": [{"system": SNOMED, "code": "195967001"}], "text": "Asthma"},
            "subject": {"reference": f"Patient/{other['id']}"},
            "onsetPeriod": {"start": "2001-01-01", "end": "2003-06-30"},
            "abatementDateTime": "2003-06-30",
        }
    )
    visit = fhir.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": ref,
            "participant": [{"individual": {"reference": f"Practitioner/{doctor['id']}"}}],
            "period": {"start": "2024-02-01T09:00:00+01:00", "end": "2024-02-01T10:30:00+01:00"},
            "length": {"value": 90, "unit": "min", "system": "http://unitsofmeasure.org", "code": "min"},
        }
    )
    admission = fhir.create(
        {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": ref,
            "period": {"start": "2024-05-01"},
        }
    )
    metformin = fhir.create(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": "860975", "display": "Metformin"}]
            },
            "subject": ref,
            "requester": {"reference": f"Practitioner/{doctor['id']}"},
            "authoredOn": "2015-04-01T10:00:00Z",
            "encounter": {"reference": f"Encounter/{visit['id']}"},
        }
    )
    return locals()


def test_condition_token_date_and_reference(fhir, chart):
    pid = chart["patient"]["id"]
    assert fhir.ids(f"Condition?code={SNOMED}|44054006") == [chart["diabetes"]["id"]]
    assert fhir.ids("Condition?clinical-status=resolved") == [chart["asthma"]["id"]]
    assert fhir.ids("Condition?code:text=asthma") == [chart["asthma"]["id"]]
    assert fhir.ids("Condition?code:text=diabetes") == [chart["diabetes"]["id"]]
    assert fhir.ids(f"Condition?patient={pid}") == [chart["diabetes"]["id"]]
    assert fhir.ids("Condition?onset-date=2015") == [chart["diabetes"]["id"]]
    assert fhir.ids("Condition?onset-date=2015-03-10") == []  # March 2015 is wider than one day
    assert fhir.ids("Condition?onset-date=ge2015-03-10") == [chart["diabetes"]["id"]]
    assert fhir.ids("Condition?onset-date=2002") == []  # the period is wider than 2002
    assert fhir.ids("Condition?onset-date=le2002-01-01") == [chart["asthma"]["id"]]
    assert fhir.ids("Condition?abatement-date:missing=true") == [chart["diabetes"]["id"]]
    assert fhir.ids("Condition?recorded-date=2015-04-01") == [chart["diabetes"]["id"]]


def test_encounter_token_period_quantity_and_reference(fhir, chart):
    visit, admission = chart["visit"]["id"], chart["admission"]["id"]
    assert fhir.ids("Encounter?class=AMB") == [visit]
    assert fhir.ids("Encounter?status:not=finished") == [admission]
    assert fhir.ids("Encounter?date=2024-02-01") == [visit]
    assert fhir.ids("Encounter?date=2024-02-01T08:30:00Z") == []
    assert fhir.ids("Encounter?date=ge2024-02-01T08:30:00Z&date=le2024-02-01T09:00:00Z") == [visit]
    assert sorted(fhir.ids("Encounter?date=ge2024-03-01")) == [admission]  # open-ended period
    assert fhir.ids("Encounter?length=gt60") == [visit]
    assert fhir.ids(f"Encounter?participant=Practitioner/{chart['doctor']['id']}") == [visit]
    assert fhir.ids("Encounter?participant:Practitioner.family=grey") == [visit]
    assert sorted(fhir.ids("Encounter?_sort=-date")) == sorted([visit, admission])
    assert fhir.ids("Encounter?_sort=-date") == [admission, visit]


def test_medication_request_parameters(fhir, chart):
    rx = chart["metformin"]["id"]
    assert fhir.ids(f"MedicationRequest?code={RXNORM}|860975") == [rx]
    assert fhir.ids("MedicationRequest?status=active&intent=order") == [rx]
    assert fhir.ids("MedicationRequest?intent=plan") == []
    assert fhir.ids("MedicationRequest?authoredon=2015-04-01") == [rx]
    assert fhir.ids("MedicationRequest?authoredon=gt2015-04-01T10:00:00Z") == []
    assert fhir.ids(f"MedicationRequest?requester={chart['doctor']['id']}") == [rx]
    assert fhir.ids(f"MedicationRequest?encounter=Encounter/{chart['visit']['id']}") == [rx]
    assert fhir.ids("MedicationRequest?patient.family=chart") == [rx]
    bundle = fhir.search(f"MedicationRequest?_id={rx}&_include=MedicationRequest:requester")
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"MedicationRequest", "Practitioner"}
