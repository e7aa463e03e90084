"""Regression tests for attacks found in review: each names the hole it closes."""

from __future__ import annotations

import pytest

from app.extensions import db
from oauth.models import OAuthClient
from oauth.validity import bump_epoch
from tests.conftest import token_request
from tests.fhir.conftest import FhirClient


def obs(subject: str, category: str = "vital-signs", **extra) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{subject}"},
        **extra,
    }


@pytest.fixture
def people(fhir, make, client, app):
    for pid in ("p1", "p2"):
        fhir.put(f"/Patient/{pid}", {"resourceType": "Patient", "id": pid})

    def patient_token(pid: str, scope: str = "patient/*.rs") -> FhirClient:
        cred = make.patient_credential("general", pid)
        with app.app_context():
            db.session.get(OAuthClient, cred.key).scope = scope
            bump_epoch()  # as every change to a client does: workers cache clients
            db.session.commit()
        return FhirClient(client, "general", token_request(client, cred).get_json()["access_token"])

    def system_token(*scopes: str) -> FhirClient:
        cred = make.api_key("general", permissions=list(scopes))
        return FhirClient(client, "general", token_request(client, cred).get_json()["access_token"])

    return patient_token, system_token


def test_two_puts_of_one_resource_in_a_batch_leave_no_stale_index(fhir, people):
    """(A transaction may not write one resource twice: tests/fhir/test_transaction_rules.py.)"""
    patient_token, _ = people
    entries = [
        {"resource": {**obs("p1"), "id": "x"}, "request": {"method": "PUT", "url": "Observation/x"}},
        {"resource": {**obs("p2"), "id": "x"}, "request": {"method": "PUT", "url": "Observation/x"}},
    ]
    assert fhir.post("", {"resourceType": "Bundle", "type": "batch", "entry": entries}).status_code == 200
    assert patient_token("p1").get("/Observation/x").status_code == 404
    assert fhir.ids("Observation?subject=Patient/p1") == []
    assert fhir.ids("Observation?subject=Patient/p2") == ["x"]


def test_old_versions_from_another_compartment_stay_hidden(fhir, people):
    patient_token, _ = people
    fhir.put("/Observation/y", {**obs("p2"), "id": "y", "note": [{"text": "p2 secret"}]})
    fhir.put("/Observation/y", {**obs("p1"), "id": "y"})
    p1 = patient_token("p1")
    assert p1.get("/Observation/y").status_code == 200
    assert p1.get("/Observation/y/_history/1").status_code == 404
    for path in ("/Observation/y/_history", "/Observation/_history", "/_history"):
        assert "p2 secret" not in p1.get(path).get_data(as_text=True), path


def test_restricted_scopes_bind_every_way_in(fhir, people):
    _, system_token = people
    vital = fhir.create(obs("p1"))["id"]
    lab = fhir.create(obs("p1", "laboratory"))["id"]
    labs_only = system_token("system/Observation.rs?category=laboratory", "system/Patient.rs")
    assert labs_only.get(f"/Observation/{vital}").status_code == 404
    revinclude = labs_only.get("/Patient?_id=p1&_revinclude=Observation:subject").get_data(as_text=True)
    assert vital not in revinclude and lab in revinclude
    everything = labs_only.get("/Patient/p1/$everything").get_data(as_text=True)
    assert vital not in everything and lab in everything
    assert labs_only.get("/Observation/_history").status_code == 403
    assert labs_only.get(f"/Observation/{lab}/_history").status_code == 403
    assert labs_only.get(f"/Observation/{lab}/_history/1").status_code == 403


def test_a_patient_cannot_write_into_another_compartment(people):
    patient_token, _ = people
    writer = patient_token("p1", "patient/*.cruds")
    assert writer.post("/Observation", obs("p1")).status_code == 201
    injected = obs("p1", performer=[{"reference": "Patient/p2"}])
    assert writer.post("/Observation", injected).status_code == 403
    assert writer.post("/Patient", {"resourceType": "Patient"}).status_code == 403


def test_the_audit_trail_cannot_be_written(fhir, people, app):
    _, system_token = people
    auditor = system_token("system/AuditEvent.cruds")
    app.extensions["fhirgate_audit"].flush()
    event = auditor.search("AuditEvent?_count=1")["entry"][0]["resource"]
    assert auditor.delete(f"/AuditEvent/{event['id']}").status_code == 403
    forged = {key: value for key, value in event.items() if key not in ("id", "meta")}
    assert auditor.post("/AuditEvent", forged).status_code == 403
    assert auditor.put(f"/AuditEvent/{event['id']}", event).status_code == 403


def test_whole_hospital_history_needs_search_permission(fhir, people):
    _, system_token = people
    fhir.create(obs("p1"))
    reader = system_token("system/Observation.r", "system/Patient.rs")
    body = reader.get("/_history").get_data(as_text=True)
    assert '"resourceType":"Observation"' not in body and '"resourceType":"Patient"' in body


@pytest.mark.parametrize(
    "path,status",
    [
        ("/Patient?birthdate=ap0001-01-01", 200),
        ("/Patient?birthdate=ap9999-12-31", 200),
        ("/Patient?_lastUpdated=ap0001", 200),
        ("/Observation?value-quantity=1e9999999", 400),
        ("/Observation?value-quantity=9e30", 400),
        ("/_history?_count=²", 400),
        ("/Patient/p1/$everything?_count=²", 400),
        ("/Patient/p1/_history/²", 404),
        ("/Patient/%00", 400),
        ("/Patient?name=a%00b", 400),
        ("/Patient?_id=%00", 400),
    ],
)
def test_odd_input_is_a_4xx_not_a_500(fhir, people, path, status):
    assert fhir.get(path).status_code == status


def test_odd_bodies_and_headers_are_4xx(fhir, people):
    assert (
        fhir.put(
            "/Patient/p1", {"resourceType": "Patient", "id": "p1"}, headers={"If-Match": 'W/"²"'}
        ).status_code
        == 400
    )
    assert fhir.post("/Patient", '{"resourceType": "Patient", "gender": "fe\\u0000male"}').status_code == 400
    long_code = {**obs("p1"), "code": {"coding": [{"system": "http://x/" + "s" * 400, "code": "c" * 400}]}}
    assert fhir.post("/Observation", long_code).status_code == 201
    huge = {**obs("p1"), "valueQuantity": {"value": 1e30, "unit": "x"}}
    assert fhir.post("/Observation", huge).status_code == 201


def test_include_and_sort_amplification_is_refused(fhir, people):
    params = ["subject", "patient", "focus", "performer", "encounter", "specimen", "device", "has-member"]
    many = "&".join(f"_revinclude=Observation:{param}" for param in params)
    many += "&_include=Patient:general-practitioner&_include=Patient:organization&_include=Patient:link"
    assert fhir.get(f"/Patient?{many}").status_code == 400
    assert fhir.get("/Patient?_sort=" + ",".join(["family"] * 6)).status_code == 400
    assert (
        fhir.get("/Patient?_revinclude=Observation:subject&_revinclude=Observation:subject").status_code
        == 200
    )
