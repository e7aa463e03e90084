"""Who may export what, from the attacker's side too: a patient's record only, scopes and
``_typeFilter`` narrowing the files, nobody else's job or files, and every parameter applied or
refused."""

from __future__ import annotations

import orjson
import pytest

from app.extensions import db
from app.timeutil import utcnow
from fhir.bulk.tables import jobs
from fhir.storage.sql import SqlRepository
from tests.bulk.conftest import Exporter, bearer, local, run_worker


def _total(client, auth: dict, query: str) -> int:
    joiner = "&" if "?" in query else "?"
    found = client.get(f"/fhir/general/{query}{joiner}_total=accurate&_count=0", headers=auth)
    assert found.status_code == 200, found.get_json()
    return found.get_json()["total"]


@pytest.fixture
def backend(app, client, make, seeded):
    key = make.api_key(seeded, permissions=["system/*.rs"])
    return Exporter(app, client, bearer(client, key))


def test_a_system_export_holds_the_whole_hospital_and_nothing_else(backend, client):
    manifest = backend.export()
    found = backend.files(manifest)
    assert {p["id"] for p in found["Patient"]} == {f"sb0-p{n}" for n in range(4)}  # not sb7-…
    assert "AuditEvent" not in found  # the audit trail needs a scope that names it
    for resource_type, resources in found.items():
        assert len(resources) == _total(client, backend.auth, resource_type)


def test_a_patient_token_exports_its_own_compartment_only(app, client, make, seeded):
    mine = Exporter(app, client, bearer(client, make.patient_credential(seeded, "sb0-p1")))
    found = mine.files(mine.export("Patient/$export"))
    assert [p["id"] for p in found["Patient"]] == ["sb0-p1"]
    assert "Practitioner" not in found and "Organization" not in found  # not in any compartment
    for resource_type, resources in found.items():
        assert len(resources) == _total(client, mine.auth, resource_type)
        if resource_type != "Patient":
            assert all("sb0-p1" in orjson.dumps(r).decode() for r in resources)
    for path in ("$export", "Group/any/$export"):
        assert mine.kickoff(path).status_code == 403
    someone_else = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/sb0-p2"}}]}  # fmt: skip
    assert mine.kickoff("Patient/$export", json=someone_else).status_code == 403


def test_type_filter_and_scope_restrictions_narrow_the_export(app, client, make, seeded, backend):
    manifest = backend.export(query="_type=Observation&_typeFilter=Observation%3Fcategory%3Dlaboratory")
    laboratory = backend.files(manifest)["Observation"]
    assert len(laboratory) == _total(client, backend.auth, "Observation?category=laboratory")
    assert 0 < len(laboratory) < _total(client, backend.auth, "Observation")

    key = make.api_key(
        seeded, permissions=["system/Observation.rs?category=vital-signs", "system/Patient.rs"]
    )
    narrowed = Exporter(app, client, bearer(client, key))
    found = narrowed.files(narrowed.export())
    assert set(found) == {"Observation", "Patient"}
    assert len(found["Observation"]) == _total(client, backend.auth, "Observation?category=vital-signs")
    refused = narrowed.kickoff(query="_type=Condition")
    assert (
        refused.status_code == 403 and "system/Condition.rs" in refused.get_json()["issue"][0]["diagnostics"]
    )


def test_nobody_else_sees_the_job_or_its_files(app, client, make, seeded, backend):
    started = backend.kickoff()
    status = local(started.headers["Content-Location"])
    run_worker(app)
    manifest = client.get(status, headers=backend.auth).get_json()
    file_url = local(manifest["output"][0]["url"])

    colleague = bearer(client, make.api_key(seeded, permissions=["system/*.rs"]))
    patient = bearer(client, make.patient_credential(seeded, "sb0-p0"))
    stranger_key = make.api_key("other", permissions=["system/*.rs"])
    stranger = bearer(client, stranger_key)
    for auth in (colleague, patient):
        for method, url in (("get", status), ("delete", status), ("get", file_url)):
            answer = getattr(client, method)(url, headers=auth)
            assert answer.status_code == 404, (method, url)
            assert answer.get_json()["resourceType"] == "OperationOutcome"
    for url in (status, file_url):  # its token is for its own hospital
        assert client.get(url, headers=stranger).status_code == 401
        assert client.get(url.replace("/general/", "/other/"), headers=stranger).status_code == 404
    assert client.get(file_url).status_code == 401
    assert client.get(file_url.replace(".ndjson", "x.ndjson"), headers=backend.auth).status_code == 404
    assert client.get(status, headers=backend.auth).status_code == 200  # still there for its owner


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("_type=Observation,Nonsense", 400),
        ("_type=Observation&_bogus=1", 400),
        ("includeAssociatedData=LatestProvenanceResources", 400),
        ("_since=2024-01-01", 400),  # a date, not an instant
        ("_typeFilter=Condition%3Fcode%3Dx&_type=Observation", 400),  # a type not exported
        ("_typeFilter=Observation%3Fnonsense%3D1", 400),
        ("_typeFilter=Observation%3F_sort%3Ddate", 400),
        ("_elements=Observation.nonsense", 400),
        ("_outputFormat=application/json", 400),
    ],
)
def test_every_parameter_is_applied_or_refused(backend, query, status):
    refused = backend.kickoff(query=query)
    assert refused.status_code == status, refused.get_json()
    assert refused.get_json()["resourceType"] == "OperationOutcome"


def test_lenient_handling_leaves_out_what_it_does_not_apply(backend):
    started = backend.kickoff(
        query="_type=Patient&_bogus=1", headers={"Prefer": "respond-async, handling=lenient"}
    )
    assert started.status_code == 202
    run_worker(backend.app)
    manifest = backend.client.get(local(started.headers["Content-Location"]), headers=backend.auth).get_json()
    assert manifest["request"].endswith("/fhir/general/$export?_type=Patient")


def test_a_kickoff_must_ask_to_be_asynchronous(backend):
    assert backend.kickoff(headers={"Prefer": ""}).status_code == 400


def test_since_and_elements(app, client, backend):
    before = utcnow()
    with app.app_context():
        repo = SqlRepository(db.session, "general")
        observation = orjson.loads(repo.read("Observation", "sb0-p0-obs0").content)
        observation["status"] = "amended"
        repo.update("Observation", "sb0-p0-obs0", observation)
        db.session.commit()
    since = before.isoformat().replace("+00:00", "Z")
    found = backend.files(backend.export(query=f"_since={since}&_elements=status"))
    assert list(found) == ["Observation"]
    (changed,) = found["Observation"]
    assert changed["id"] == "sb0-p0-obs0" and changed["status"] == "amended"
    assert "valueQuantity" not in changed and "subject" not in changed
    assert {"code": "SUBSETTED"}.items() <= changed["meta"]["tag"][-1].items()
    assert "code" in changed  # mandatory elements stay


def test_a_post_kickoff_takes_parameters(backend):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Patient,Condition"},
        {"name": "patient", "valueReference": {"reference": "Patient/sb0-p3"}},
    ]}  # fmt: skip
    found = backend.files(backend.export("Patient/$export", json=body))
    assert [p["id"] for p in found["Patient"]] == ["sb0-p3"]
    assert found["Condition"] and all(
        c["subject"]["reference"] == "Patient/sb0-p3" for c in found["Condition"]
    )
    assert backend.kickoff("$export", json=body).status_code == 400  # patient is for Patient and Group


def test_a_group_member_that_is_no_patient_is_reported(app, client, make, seeded):
    key = make.api_key(seeded, permissions=["system/*.rs", "system/Group.c"])
    exporter = Exporter(app, client, bearer(client, key))
    group = {"resourceType": "Group", "type": "person", "actual": True, "member": [
        {"entity": {"reference": "Patient/sb0-p0"}}, {"entity": {"reference": "Practitioner/sb0-pr0"}},
        {"entity": {"reference": "Patient/sb0-p1"}, "inactive": True}]}  # fmt: skip
    created = client.post(
        "/fhir/general/Group", json=group, headers={**exporter.auth, "Content-Type": "application/fhir+json"}
    )
    assert created.status_code == 201, created.get_json()
    manifest = exporter.export(f"Group/{created.get_json()['id']}/$export")
    assert [p["id"] for p in exporter.files(manifest)["Patient"]] == ["sb0-p0"]
    (error,) = manifest["error"]
    outcome = orjson.loads(client.get(local(error["url"]), headers=exporter.auth).data)
    assert "Practitioner/sb0-pr0" in outcome["issue"][0]["diagnostics"]
    assert exporter.kickoff("Group/nope/$export").status_code == 404


def test_exports_and_downloads_are_audited(app, client, backend):
    manifest = backend.export()
    backend.files(manifest)
    app.extensions["fhirgate_audit"].flush()
    with app.app_context():
        bundle = orjson.loads(SqlRepository(db.session, "general").search("AuditEvent", [("_count", "1000")]))
    described = [entry["resource"]["outcomeDesc"] for entry in bundle["entry"]]
    assert any("GET /fhir/general/$export" in text for text in described)
    downloads = [text for text in described if "/bulk-files/" in text]
    assert len(downloads) == len(manifest["output"])


def test_a_client_has_a_bounded_number_of_exports_waiting(app, backend):
    app.config["FHIRGATE_EXPORT_ACTIVE_PER_CLIENT"] = 2
    try:
        assert [backend.kickoff().status_code for _ in range(3)] == [202, 202, 429]
    finally:
        app.config["FHIRGATE_EXPORT_ACTIVE_PER_CLIENT"] = 4


def test_an_expired_export_is_gone_with_its_files(app, client, backend):
    started = backend.kickoff()
    run_worker(app)
    status = local(started.headers["Content-Location"])
    job_id = status.rsplit("/", 1)[1]
    folder = app.extensions["fhirgate_export_storage"].root / job_id
    assert any(folder.iterdir())
    with app.app_context():
        db.session.execute(jobs.update().where(jobs.c.id == job_id).values(expires_at=utcnow()))
        db.session.commit()
    assert client.get(status, headers=backend.auth).status_code == 404
    run_worker(app)  # a worker's pass deletes what expired
    assert not folder.exists()
    with app.app_context():
        assert db.session.execute(jobs.select().where(jobs.c.id == job_id)).first() is None


def test_the_same_client_for_another_person_or_context_gets_404(app, client, backend):
    """One app may hold a clinician's token and a patient's: a job is its starter's alone."""
    started = backend.kickoff()
    status = local(started.headers["Content-Location"])
    job_id = status.rsplit("/", 1)[1]
    for changed in ({"subject": "someone-else"}, {"smart_context": "user"}):
        with app.app_context():
            original = db.session.execute(jobs.select().where(jobs.c.id == job_id)).first()
            db.session.execute(jobs.update().where(jobs.c.id == job_id).values(**changed))
            db.session.commit()
        assert client.get(status, headers=backend.auth).status_code == 404
        assert client.delete(status, headers=backend.auth).status_code == 404
        with app.app_context():
            restored = {key: getattr(original, key) for key in changed}
            db.session.execute(jobs.update().where(jobs.c.id == job_id).values(**restored))
            db.session.commit()
    assert client.get(status, headers=backend.auth).status_code == 202


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("_since=2024-02-30T00:00:00Z", {}),  # shaped like an instant, no such day
        ("_type=Nonsense", {"Prefer": "respond-async, handling=lenient"}),  # never "every type"
        ("_type=Observation&_typeFilter=Observation%3Fcode%3Amissing%3Dmaybe", {}),
    ],
)
def test_bad_kickoffs_are_400_at_once(backend, query, headers):
    refused = backend.kickoff(query=query, headers=headers)
    assert refused.status_code == 400, refused.get_json()


def test_a_post_kickoff_with_a_malformed_parameter_list_is_400(backend):
    refused = backend.kickoff("Patient/$export", json={"resourceType": "Parameters", "parameter": 5})
    assert refused.status_code == 400


def test_lenient_leaves_refused_items_out_of_the_request(backend):
    lenient = {"Prefer": "respond-async, handling=lenient"}
    started = backend.kickoff(query="_type=Patient,Nonsense&_elements=id,nonsense", headers=lenient)
    assert started.status_code == 202
    run_worker(backend.app)
    manifest = backend.client.get(local(started.headers["Content-Location"]), headers=backend.auth).get_json()
    assert manifest["request"].endswith("/$export?_type=Patient&_elements=id")


def test_a_post_kickoffs_request_is_its_url(backend):
    body = {"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Patient"}]}
    manifest = backend.export("Patient/$export", json=body)
    assert manifest["request"].endswith("/fhir/general/Patient/$export")


def test_a_kickoff_asking_too_much_is_refused(backend):
    filters = "&".join(f"_typeFilter=Observation%3Fcode%3D{n}" for n in range(51))
    assert backend.kickoff(query=f"_type=Observation&{filters}").status_code == 400
    many = [{"name": "patient", "valueReference": {"reference": f"Patient/p{n}"}} for n in range(1001)]
    body = {"resourceType": "Parameters", "parameter": many}
    assert backend.kickoff("Patient/$export", json=body).status_code == 400


def test_a_group_larger_than_a_statements_parameters_exports(app, client, make, seeded, backend):
    """70,000 members (PostgreSQL takes 65,535 parameters a statement): the list goes as one."""
    key = make.api_key(seeded, permissions=["system/*.rs", "system/Group.c"])
    exporter = Exporter(app, client, bearer(client, key))
    members = [{"entity": {"reference": f"Patient/absent-{n}"}} for n in range(70_000)]
    members.append({"entity": {"reference": "Patient/sb0-p2"}})
    group = {"resourceType": "Group", "type": "person", "actual": True, "member": members}
    headers = {**exporter.auth, "Content-Type": "application/fhir+json"}
    created = client.post("/fhir/general/Group", json=group, headers=headers)
    assert created.status_code == 201, created.get_json()
    manifest = exporter.export(f"Group/{created.get_json()['id']}/$export", query="_type=Patient,Condition")
    found = exporter.files(manifest)
    assert [p["id"] for p in found["Patient"]] == ["sb0-p2"]
    assert all(c["subject"]["reference"] == "Patient/sb0-p2" for c in found.get("Condition", []))
