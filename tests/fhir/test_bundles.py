"""Batch and transaction Bundles, conditional interactions (FHIR R4B http.html)."""

from __future__ import annotations

import threading

from app.extensions import db
from tests.conftest import count_stored


def entry(resource=None, method="POST", url=None, full_url=None, **request):
    item = {"request": {"method": method, "url": url or resource["resourceType"], **request}}
    if resource is not None:
        item["resource"] = resource
    if full_url:
        item["fullUrl"] = full_url
    return item


def bundle(kind, *entries):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def patient(family="Doe", **extra):
    return {"resourceType": "Patient", "name": [{"family": family}], **extra}


def observation(subject_ref, code="8867-4"):
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject_ref},
    }


def test_transaction_resolves_urn_uuid_references(fhir):
    response = fhir.post(
        "/",
        bundle(
            "transaction",
            entry(observation("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a")),
            entry(patient(), full_url="urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"),
        ),
    )
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert result["type"] == "transaction-response"
    assert [e["response"]["status"] for e in result["entry"]] == ["201 Created", "201 Created"]
    patient_id = result["entry"][1]["resource"]["id"]
    assert result["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"
    assert fhir.ids(f"Observation?subject=Patient/{patient_id}") == [result["entry"][0]["resource"]["id"]]


def test_transaction_with_an_invalid_fifth_entry_stores_nothing(fhir, app):
    entries = [entry(patient(f"P{i}")) for i in range(4)]
    entries.append(entry({"resourceType": "Patient", "birthDate": "not-a-date"}))
    entries.append(entry(patient("P5")))
    response = fhir.post("/", bundle("transaction", *entries))
    assert response.status_code == 400
    assert "Bundle entry 4" in response.get_json()["issue"][0]["diagnostics"]
    with app.app_context():
        assert count_stored("fhir_resources") == 0
        assert count_stored("fhir_history") == 0
        assert count_stored("fhir_idx_string") == 0
        db.session.rollback()


def test_transaction_with_a_failing_update_rolls_back_earlier_creates(fhir, app):
    existing = fhir.create(patient("Kept"))
    response = fhir.post(
        "/",
        bundle(
            "transaction",
            entry(patient("New")),
            entry(
                {**existing, "gender": "male"}, method="PUT", url=f"Patient/{existing['id']}", ifMatch='W/"7"'
            ),
        ),
    )
    assert response.status_code == 412
    assert fhir.ids("Patient?family=new") == []
    assert fhir.get(f"/Patient/{existing['id']}").get_json()["meta"]["versionId"] == "1"


def test_transaction_processes_deletes_puts_and_reads(fhir):
    doomed = fhir.create(patient("Doomed"))
    kept = fhir.create(patient("Kept"))
    response = fhir.post(
        "/",
        bundle(
            "transaction",
            entry(method="GET", url=f"Patient/{kept['id']}"),
            entry(patient("Put", id="put-1"), method="PUT", url="Patient/put-1"),
            entry(method="DELETE", url=f"Patient/{doomed['id']}"),
        ),
    )
    assert response.status_code == 200, response.get_json()
    statuses = [e["response"]["status"] for e in response.get_json()["entry"]]
    assert statuses == ["200 OK", "201 Created", "204 No Content"]
    assert fhir.get(f"/Patient/{doomed['id']}").status_code == 410
    assert fhir.get("/Patient/put-1").status_code == 200


def test_transaction_conditional_create_and_conditional_reference(fhir):
    fhir.create(patient("Known", identifier=[{"system": "urn:mrn", "value": "42"}]))
    response = fhir.post(
        "/",
        bundle(
            "transaction",
            entry(
                patient("Dup", identifier=[{"system": "urn:mrn", "value": "42"}]),
                ifNoneExist="identifier=urn:mrn|42",
            ),
            entry(observation("Patient?identifier=urn:mrn|42")),
        ),
    )
    assert response.status_code == 200, response.get_json()
    result = response.get_json()["entry"]
    assert result[0]["response"]["status"] == "200 OK"
    known = fhir.ids("Patient?identifier=urn:mrn|42")
    assert len(known) == 1
    assert result[1]["resource"]["subject"]["reference"] == f"Patient/{known[0]}"


def test_conditional_reference_must_match_exactly_one(fhir):
    response = fhir.post("/", bundle("transaction", entry(observation("Patient?identifier=urn:mrn|none"))))
    assert response.status_code == 412


def test_batch_reports_each_entry(fhir):
    existing = fhir.create(patient("There"))
    response = fhir.post(
        "/",
        bundle(
            "batch",
            entry(patient("Ok")),
            entry({"resourceType": "Patient", "birthDate": "bad"}),
            entry(method="GET", url=f"Patient/{existing['id']}"),
            entry(method="GET", url="Patient/missing"),
            entry(method="GET", url="Patient?family=there"),
        ),
    )
    assert response.status_code == 200
    result = response.get_json()
    assert result["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert (
        statuses[0] == "201 Created"
        and statuses[1] == "400"
        and statuses[2] == "200 OK"
        and statuses[3] == "404"
    )
    assert result["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert result["entry"][4]["resource"]["type"] == "searchset"
    assert fhir.ids("Patient?family=ok")


def test_malformed_bundles_are_400(fhir):
    assert fhir.post("/", {"resourceType": "Patient"}).status_code == 400
    assert fhir.post("/", {"resourceType": "Bundle", "type": "collection"}).status_code == 400
    assert fhir.post("/", {"resourceType": "Bundle", "type": "transaction", "entry": "x"}).status_code == 400
    assert fhir.post("/", bundle("transaction", {"resource": patient()})).status_code == 400
    assert fhir.post("/", bundle("transaction", entry(patient(), method="TRACE"))).status_code == 400
    assert fhir.post("/", bundle("transaction", entry(patient(), url="Spaceship"))).status_code == 400
    assert fhir.post("/", bundle("transaction", "not an object")).status_code == 400


def test_if_none_exist_header(fhir):
    body = patient("Once", identifier=[{"system": "urn:mrn", "value": "7"}])
    first = fhir.post("/Patient", body, headers={"If-None-Exist": "identifier=urn:mrn|7"})
    second = fhir.post("/Patient", body, headers={"If-None-Exist": "identifier=urn:mrn|7"})
    assert first.status_code == 201 and second.status_code == 200
    assert first.get_json()["id"] == second.get_json()["id"]
    fhir.create(body)
    third = fhir.post("/Patient", body, headers={"If-None-Exist": "identifier=urn:mrn|7"})
    assert third.status_code == 412
    assert fhir.post("/Patient", body, headers={"If-None-Exist": "nonsense=1"}).status_code == 400


def test_parallel_conditional_creates_make_one_resource(fhir, app):
    body = patient("Racer", identifier=[{"system": "urn:mrn", "value": "race"}])
    statuses = []

    def create():
        client = app.test_client()
        from tests.fhir.conftest import FhirClient

        racer = FhirClient(client, "general", fhir.token)
        statuses.append(
            racer.post("/Patient", body, headers={"If-None-Exist": "identifier=urn:mrn|race"}).status_code
        )

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(fhir.ids("Patient?identifier=urn:mrn|race")) == 1
    assert sorted(statuses).count(201) == 1 and all(s in (200, 201) for s in statuses), statuses


def test_conditional_update_and_delete(fhir):
    created = fhir.create(patient("Cond", identifier=[{"system": "urn:mrn", "value": "c1"}]))
    ident = [{"system": "urn:mrn", "value": "c1"}]
    response = fhir.put("/Patient?identifier=urn:mrn|c1", patient("Cond", gender="male", identifier=ident))
    assert response.status_code == 200 and response.get_json()["id"] == created["id"]
    made = fhir.put(
        "/Patient?identifier=urn:mrn|c2", patient("Other", identifier=[{"system": "urn:mrn", "value": "c2"}])
    )
    assert made.status_code == 201
    assert fhir.delete("/Patient?identifier=urn:mrn|c1").status_code == 204
    assert fhir.get(f"/Patient/{created['id']}").status_code == 410
    fhir.create(patient("Twin", identifier=[{"system": "urn:mrn", "value": "t"}]))
    fhir.create(patient("Twin", identifier=[{"system": "urn:mrn", "value": "t"}]))
    assert fhir.delete("/Patient?identifier=urn:mrn|t").status_code == 412


def test_a_failed_transaction_keeps_nothing_its_savepoints_released(fhir, app):
    """A conditional create takes a savepoint; on SQLite one taken before any write used to open
    (and its release commit) a transaction of its own, surviving the Bundle's failure."""
    response = fhir.post(
        "/",
        bundle(
            "transaction",
            entry(patient("Kept"), ifNoneExist="identifier=http://x|1"),
            entry({"resourceType": "Patient", "birthDate": "not-a-date"}),
        ),
    )
    assert response.status_code == 400
    with app.app_context():
        assert count_stored("fhir_resources") == 0
        assert count_stored("fhir_conditional_keys") == 0
        db.session.rollback()


def test_an_entry_url_that_is_no_url_is_a_400_not_a_500(fhir):
    for bundle_type in ("batch", "transaction"):
        bundle = {
            "resourceType": "Bundle",
            "type": bundle_type,
            "entry": [{"request": {"method": "GET", "url": "http://[x"}}],
        }
        response = fhir.post("", bundle)
        assert response.status_code in (200, 400), response.get_json()
        if bundle_type == "batch":
            assert response.get_json()["entry"][0]["response"]["status"] == "400"
        else:
            assert "not a URL" in response.get_json()["issue"][0]["diagnostics"]
