"""Scopes and patient compartments at the FHIR API, seen from the attacker's side."""

from __future__ import annotations

import pytest

from app.extensions import db
from oauth.models import OAuthClient
from oauth.validity import bump_epoch
from tests.conftest import token_request
from tests.fhir.conftest import FhirClient


def observation(patient_id: str, category: str = "vital-signs", code: str = "8867-4") -> dict:
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
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "performer": [{"reference": "Practitioner/doc"}],
    }


@pytest.fixture
def world(fhir, make, client, app):
    """Patients p1 and p2 with observations; a practitioner; tokens of several kinds."""
    doc = fhir.put(
        "/Practitioner/doc", {"resourceType": "Practitioner", "id": "doc", "name": [{"family": "Doc"}]}
    )
    assert doc.status_code == 201
    pump = fhir.put("/Device/pump", {"resourceType": "Device", "id": "pump"})
    assert pump.status_code == 201
    for pid, family in (("p1", "Mine"), ("p2", "Theirs")):
        assert (
            fhir.put(
                f"/Patient/{pid}", {"resourceType": "Patient", "id": pid, "name": [{"family": family}]}
            ).status_code
            == 201
        )
    own = [fhir.create(observation("p1"))["id"], fhir.create(observation("p1", "laboratory", "2339-0"))["id"]]
    other = fhir.create(observation("p2"))["id"]
    patient_cred = make.patient_credential("general", patient="p1")
    patient = FhirClient(client, "general", token_request(client, patient_cred).get_json()["access_token"])
    return {"admin": fhir, "patient": patient, "own": own, "other": other, "patient_cred": patient_cred}


def token_with_scopes(make, client, app, hospital: str, scopes: list[str]) -> FhirClient:
    cred = make.api_key(hospital, permissions=scopes)
    return FhirClient(client, hospital, token_request(client, cred).get_json()["access_token"])


def test_patient_reads_only_its_own_compartment(world):
    patient = world["patient"]
    assert patient.get("/Patient/p1").status_code == 200
    assert patient.get("/Patient/p2").status_code == 404
    assert patient.get(f"/Observation/{world['own'][0]}").status_code == 200
    assert patient.get(f"/Observation/{world['other']}").status_code == 404
    assert patient.get(f"/Observation/{world['other']}/_history/1").status_code == 404
    # The hospital's directory (fhir.policy.SHARED_WITH_PATIENTS) is readable; other types that
    # no patient compartment holds are not.
    assert patient.get("/Practitioner/doc").status_code == 200
    assert patient.get("/Device/pump").status_code == 404


def test_patient_searches_are_narrowed_in_the_query(world):
    patient = world["patient"]
    assert sorted(patient.ids("Observation")) == sorted(world["own"])
    assert patient.search("Observation?_summary=count")["total"] == 2
    assert patient.ids("Patient") == ["p1"]
    assert patient.ids("Observation?subject=Patient/p2") == []
    assert patient.ids("Observation?subject:Patient.family=theirs") == []
    body = patient.get("/Observation?_include=Observation:subject&_include=Observation:performer").get_data(
        as_text=True
    )
    assert "p2" not in body
    assert '"resourceType":"Practitioner","id":"doc"' in body  # the directory is shared
    revinclude = patient.get("/Patient?_revinclude=Observation:subject").get_data(as_text=True)
    assert world["other"] not in revinclude and all(o in revinclude for o in world["own"])


def test_patient_history_and_everything_are_narrowed(world):
    patient = world["patient"]
    history = patient.get("/Observation/_history").get_json()
    assert sorted(e["resource"]["id"] for e in history["entry"]) == sorted(world["own"])
    whole = patient.get("/_history").get_data(as_text=True)
    assert world["other"] not in whole and '"p2"' not in whole
    assert patient.get(f"/Observation/{world['other']}/_history").status_code == 404
    assert patient.get("/Patient/p2/$everything").status_code == 404
    everything = patient.get("/Patient/p1/$everything").get_data(as_text=True)
    assert world["other"] not in everything and world["own"][0] in everything


def test_patient_token_without_write_scope_gets_403(world):
    response = world["patient"].post("/Observation", observation("p1"))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert 'scope="patient/Observation.c"' in response.headers["WWW-Authenticate"]


def test_patient_writes_outside_the_compartment_are_403(world, app, client):
    with app.app_context():
        db.session.get(OAuthClient, world["patient_cred"].key).scope = "patient/*.cruds"
        bump_epoch()  # as every change to a client does: workers cache clients
        db.session.commit()
    writer = FhirClient(
        client, "general", token_request(client, world["patient_cred"]).get_json()["access_token"]
    )
    assert writer.post("/Observation", observation("p1")).status_code == 201
    assert writer.post("/Observation", observation("p2")).status_code == 403
    assert writer.post("/Patient", {"resourceType": "Patient"}).status_code == 403
    moved = writer.get(f"/Observation/{world['own'][0]}").get_json()
    moved["subject"] = {"reference": "Patient/p2"}
    assert writer.put(f"/Observation/{moved['id']}", moved).status_code == 403
    stolen = {**observation("p1"), "id": world["other"]}
    assert writer.put(f"/Observation/{world['other']}", stolen).status_code == 404
    assert writer.delete(f"/Observation/{world['other']}").status_code == 204
    assert world["admin"].get(f"/Observation/{world['other']}").status_code == 200  # untouched


def test_system_scopes_limit_types_and_interactions(world, make, client, app):
    reader = token_with_scopes(make, client, app, "general", ["system/Patient.rs"])
    assert reader.get("/Patient/p2").status_code == 200
    forbidden = reader.get(f"/Observation/{world['other']}")
    assert forbidden.status_code == 403 and forbidden.get_json()["issue"][0]["code"] == "forbidden"
    assert reader.post("/Patient", {"resourceType": "Patient"}).status_code == 403
    assert reader.get("/Observation?code=8867-4").status_code == 403
    body = reader.get("/Patient?_revinclude=Observation:subject").get_data(as_text=True)
    assert world["other"] not in body  # included types need their own scope


def test_v1_scopes_are_understood(world, make, client, app):
    v1 = token_with_scopes(make, client, app, "general", ["system/Observation.read"])
    assert v1.get(f"/Observation/{world['other']}").status_code == 200
    assert v1.post("/Observation", observation("p1")).status_code == 403
    writer = token_with_scopes(make, client, app, "general", ["system/Observation.write"])
    assert writer.post("/Observation", observation("p1")).status_code == 201
    assert writer.get(f"/Observation/{world['other']}").status_code == 403


def test_v2_scope_search_restrictions(world, make, client, app):
    labs = token_with_scopes(make, client, app, "general", ["system/Observation.rs?category=laboratory"])
    assert labs.ids("Observation") == [world["own"][1]]
    assert labs.get(f"/Observation/{world['own'][1]}").status_code == 200
    assert labs.get(f"/Observation/{world['own'][0]}").status_code == 404
    assert labs.search("Observation?_summary=count")["total"] == 1


def test_token_for_another_hospital_is_401(world, make, client, app):
    make.hospital("other")
    outsider = token_with_scopes(make, client, app, "other", ["system/*.cruds"])
    response = client.get("/fhir/general/Patient/p1", headers=outsider.headers())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="fhirgate", error="invalid_token"')


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer x.y.z", "Basic abc", "Bearer " + "a" * 9000])
def test_missing_or_malformed_tokens_are_401(world, client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/fhir/general/Patient/p1", headers=headers)
    assert response.status_code == 401
    # RFC 6750 §3.1: an error code only when a credential came
    assert ('error="invalid_token"' in response.headers["WWW-Authenticate"]) == (header is not None)
    assert response.get_json()["resourceType"] == "OperationOutcome"
