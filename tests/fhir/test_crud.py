"""Create, read, vread, update, patch, delete and history (FHIR R4B http.html)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from app.extensions import db
from tests.conftest import count_stored

PATIENT = {"resourceType": "Patient", "name": [{"family": "Müller", "given": ["Anna"]}], "gender": "female"}


def test_create_then_read(fhir):
    response = fhir.post("/Patient", PATIENT)
    assert response.status_code == 201
    created = response.get_json()
    assert created["meta"]["versionId"] == "1" and created["meta"]["lastUpdated"].endswith("Z")
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == f"{fhir.base_url}/Patient/{created['id']}/_history/1"
    assert response.mimetype == "application/fhir+json"
    read = fhir.get(f"/Patient/{created['id']}")
    assert read.status_code == 200
    assert read.get_json() == created
    assert read.headers["ETag"] == 'W/"1"' and "Last-Modified" in read.headers


def test_create_ignores_a_client_id(fhir):
    created = fhir.create({**PATIENT, "id": "chosen"})
    assert created["id"] != "chosen"


def test_create_accepts_application_json(fhir):
    response = fhir.post("/Patient", PATIENT, content_type="application/json")
    assert response.status_code == 201


def test_prefer_return_minimal_and_operation_outcome(fhir):
    minimal = fhir.post("/Patient", PATIENT, headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.get_data() == b"" and "Location" in minimal.headers
    outcome = fhir.post("/Patient", PATIENT, headers={"Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201 and outcome.get_json()["resourceType"] == "OperationOutcome"


def test_invalid_resource_is_400_naming_the_element_and_stores_nothing(fhir, app):
    response = fhir.post("/Patient", {"resourceType": "Patient", "birthDate": "yesterday"})
    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Patient.birthDate"]
    with app.app_context():
        assert count_stored("fhir_resources") == 0 and count_stored("fhir_history") == 0


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"{not json", "application/fhir+json"),
        (b"", "application/fhir+json"),
        (b"[]", "application/fhir+json"),
        (
            b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}}',
            "application/fhir+json",
        ),
        (b'{"resourceType": "Patient"}', "text/plain"),
        (b'{"resourceType": "Patient", "id": "bad id!"}', "application/fhir+json"),
        (b'{"name": []}', "application/fhir+json"),
    ],
)
def test_bad_bodies_are_4xx_operation_outcomes(fhir, body, content_type):
    response = fhir.post("/Patient", body, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_deeply_nested_json_is_rejected(fhir):
    nested = {"resourceType": "Patient", "extension": []}
    node = nested["extension"]
    for _ in range(200):
        child = {"url": "http://x", "extension": []}
        node.append(child)
        node = child["extension"]
    assert fhir.post("/Patient", json.dumps(nested)).status_code == 400
    too_deep_for_the_parser = '{"resourceType": "Patient", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    assert fhir.post("/Patient", too_deep_for_the_parser).status_code == 400


def test_unknown_type_and_unknown_id_are_404(fhir):
    assert fhir.get("/Spaceship/1").status_code == 404
    response = fhir.get("/Patient/does-not-exist")
    assert response.status_code == 404 and response.get_json()["issue"][0]["code"] == "not-found"


def test_update_creates_versions_and_vread_reads_them(fhir):
    created = fhir.create(PATIENT)
    rid = created["id"]
    response = fhir.put(f"/Patient/{rid}", {**PATIENT, "id": rid, "gender": "other"})
    assert response.status_code == 200
    assert response.get_json()["meta"]["versionId"] == "2" and response.headers["ETag"] == 'W/"2"'
    assert fhir.get(f"/Patient/{rid}/_history/1").get_json()["gender"] == "female"
    assert fhir.get(f"/Patient/{rid}/_history/2").get_json()["gender"] == "other"
    assert fhir.get(f"/Patient/{rid}/_history/3").status_code == 404
    assert fhir.get(f"/Patient/{rid}/_history/x").status_code == 404


def test_update_with_a_client_id_creates(fhir):
    response = fhir.put("/Patient/my-own-id", {**PATIENT, "id": "my-own-id"})
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/Patient/my-own-id/_history/1")


def test_update_with_mismatched_id_is_400(fhir):
    created = fhir.create(PATIENT)
    assert fhir.put(f"/Patient/{created['id']}", {**PATIENT, "id": "other"}).status_code == 400
    assert fhir.put(f"/Patient/{created['id']}", PATIENT).status_code == 400


def test_stale_if_match_is_412_and_changes_nothing(fhir):
    created = fhir.create(PATIENT)
    rid = created["id"]
    assert fhir.put(f"/Patient/{rid}", {**PATIENT, "id": rid, "gender": "male"}).status_code == 200
    stale = fhir.put(
        f"/Patient/{rid}", {**PATIENT, "id": rid, "gender": "unknown"}, headers={"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    current = fhir.get(f"/Patient/{rid}").get_json()
    assert current["gender"] == "male" and current["meta"]["versionId"] == "2"
    fresh = fhir.put(
        f"/Patient/{rid}", {**PATIENT, "id": rid, "gender": "unknown"}, headers={"If-Match": 'W/"2"'}
    )
    assert fresh.status_code == 200


def test_malformed_if_match_is_400(fhir):
    created = fhir.create(PATIENT)
    response = fhir.put(f"/Patient/{created['id']}", {**created}, headers={"If-Match": "banana"})
    assert response.status_code == 400


def test_json_patch(fhir):
    created = fhir.create(PATIENT)
    rid = created["id"]
    response = fhir.patch(f"/Patient/{rid}", [{"op": "replace", "path": "/gender", "value": "male"}])
    assert response.status_code == 200
    assert response.get_json()["gender"] == "male" and response.get_json()["meta"]["versionId"] == "2"


def test_json_patch_errors(fhir):
    created = fhir.create(PATIENT)
    rid = created["id"]
    assert (
        fhir.patch(f"/Patient/{rid}", [{"op": "replace", "path": "/nope/x", "value": 1}]).status_code == 422
    )
    assert (
        fhir.patch(f"/Patient/{rid}", [{"op": "replace", "path": "/gender", "value": 5}]).status_code == 400
    )
    assert fhir.patch(f"/Patient/{rid}", {"op": "replace"}).status_code == 400
    assert fhir.patch(f"/Patient/{rid}", [{"op": "replace", "path": "/id", "value": "x"}]).status_code == 400
    stale = fhir.patch(
        f"/Patient/{rid}", [{"op": "remove", "path": "/gender"}], headers={"If-Match": 'W/"9"'}
    )
    assert stale.status_code == 412
    assert fhir.patch("/Patient/missing", [{"op": "remove", "path": "/gender"}]).status_code == 404
    assert fhir.get(f"/Patient/{rid}").get_json()["meta"]["versionId"] == "1"


def test_text_that_bulk_loading_must_escape_round_trips_exactly(fhir):
    """Tabs, newlines, backslashes and \\N are COPY syntax on PostgreSQL; they must stay data."""
    family = 'O\'Brien\\N\tTab\nLine\r\\back\\slash "quoted" Zoë 患者'
    patient = {**PATIENT, "id": "escapes", "name": [{"family": family, "given": ["\\N"]}]}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient, "request": {"method": "PUT", "url": "Patient/escapes"}}],
    }
    assert fhir.post("", bundle).status_code == 200
    stored = fhir.get("/Patient/escapes").get_json()
    assert stored["name"] == [{"family": family, "given": ["\\N"]}]
    assert fhir.get("/Patient/escapes/_history/1").get_json()["name"] == stored["name"]
    # In a search value a backslash is escaped by another (search.html#escaping).
    found = fhir.search("Patient?given:exact=" + quote("\\\\N"))
    assert [entry["resource"]["id"] for entry in found["entry"]] == ["escapes"]


def test_delete_reads_as_410_and_history_keeps_every_version(fhir):
    created = fhir.create(PATIENT)
    rid = created["id"]
    fhir.put(f"/Patient/{rid}", {**PATIENT, "id": rid, "gender": "male"})
    response = fhir.delete(f"/Patient/{rid}")
    assert response.status_code == 204
    gone = fhir.get(f"/Patient/{rid}")
    assert gone.status_code == 410 and gone.get_json()["issue"][0]["code"] == "deleted"
    history = fhir.get(f"/Patient/{rid}/_history").get_json()
    assert history["type"] == "history"
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "POST"]
    assert [e["response"]["etag"] for e in history["entry"]] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert "resource" not in history["entry"][0]
    assert fhir.get(f"/Patient/{rid}/_history/3").status_code == 410
    assert fhir.get(f"/Patient/{rid}/_history/2").status_code == 200
    assert fhir.delete(f"/Patient/{rid}").status_code == 204  # idempotent
    assert fhir.put(f"/Patient/{rid}", {**PATIENT, "id": rid}).status_code == 201  # re-created


def test_type_and_hospital_history(fhir):
    patient = fhir.create(PATIENT)
    observation = fhir.create({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
    type_history = fhir.get("/Patient/_history").get_json()
    assert [e["resource"]["id"] for e in type_history["entry"]] == [patient["id"]]
    everything = fhir.get("/_history").get_json()
    assert [e["resource"]["id"] for e in everything["entry"]] == [observation["id"], patient["id"]]
    assert len(fhir.get("/_history?_count=1").get_json()["entry"]) == 1


def test_nothing_is_stored_by_a_failed_update(fhir, app):
    created = fhir.create(PATIENT)
    with app.app_context():
        before = count_stored("fhir_history"), count_stored("fhir_idx_string")
    bad = fhir.put(f"/Patient/{created['id']}", {**PATIENT, "id": created["id"], "birthDate": "nope"})
    assert bad.status_code == 400
    with app.app_context():
        assert (count_stored("fhir_history"), count_stored("fhir_idx_string")) == before
        db.session.rollback()


def test_xml_is_not_acceptable(fhir):
    created = fhir.create(PATIENT)
    assert fhir.get(f"/Patient/{created['id']}?_format=xml").status_code == 406
    assert (
        fhir.get(f"/Patient/{created['id']}", headers={"Accept": "application/fhir+xml"}).status_code == 406
    )


def test_unknown_hospital_is_404(fhir, client):
    response = client.get("/fhir/nowhere/Patient/1", headers=fhir.headers())
    assert response.status_code == 404 and response.get_json()["resourceType"] == "OperationOutcome"


def test_create_with_criteria_in_the_url_is_refused(fhir):
    """FHIR takes conditional-create criteria only from If-None-Exist (http.html#ccreate)."""
    assert fhir.post("/Patient?family=Doe", PATIENT).status_code == 400
    assert fhir.post("/Patient?_format=json", PATIENT).status_code == 201
