"""Create, read, vread, update, patch, delete and history (FHIR R4B http.html)."""

from __future__ import annotations

PATIENT = {"resourceType": "Patient", "name": [{"family": "Müller", "given": ["Anna"]}], "gender": "female"}


def test_create_then_read(fhir):
    response = fhir.post("/Patient", PATIENT)
    assert response.status_code == 201
    created = response.get_json()
    assert created["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == f"{fhir.base_url}/Patient/{created['id']}/_history/1"
    assert response.mimetype == "application/fhir+json"
    read = fhir.get(f"/Patient/{created['id']}")
    assert read.status_code == 200
    assert read.get_json() == created
