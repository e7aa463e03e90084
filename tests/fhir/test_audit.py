"""Every FHIR request leaves an AuditEvent; admins read them; no secret or token in them."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime

from sqlalchemy import MetaData, select

from app.extensions import db
from tests.conftest import token_request
from tests.fhir.conftest import FhirClient


def flush(app):
    app.extensions["fhirgate_audit"].flush()


def test_a_scripted_session_is_audited(app, client, make, caplog):
    caplog.set_level(logging.DEBUG)
    make.hospital("general")
    make.patient("general", "p1")
    make.patient("general", "p2")
    key = make.api_key("general", permissions=["system/*.cruds"])
    system = FhirClient(client, "general", token_request(client, key).get_json()["access_token"])
    patient_cred = make.patient_credential("general", "p1")
    patient_token = token_request(client, patient_cred).get_json()["access_token"]
    patient = FhirClient(client, "general", patient_token)

    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    created = system.create({**observation, "subject": {"reference": "Patient/p1"}})
    assert patient.get("/Patient/p1").status_code == 200
    assert patient.get("/Patient/p2").status_code == 404
    assert patient.get("/Observation").status_code == 200
    assert (
        client.get("/fhir/general/Patient/p1", headers={"Authorization": "Bearer nonsense"}).status_code
        == 401
    )
    flush(app)

    admin = make.as_role("hospital-admin", "general")
    events = admin.get("/api/hospitals/general/audit-events").get_json()
    seen = [(e["client"], e["interaction"], e["outcome"], e["patient"]) for e in events]
    assert ("anonymous", "read", "failure", None) in seen
    assert (patient_cred.key, "search-type", "success", "p1") in seen
    assert (patient_cred.key, "read", "failure", "p1") in seen
    assert (patient_cred.key, "read", "success", "p1") in seen
    assert (key.key, "create", "success", None) in seen
    search = next(e for e in events if e["client"] == patient_cred.key and e["interaction"] == "search-type")
    assert f"Observation/{created['id']}" in search["resources"]
    assert all(e["address"] == "127.0.0.1" for e in events)

    only_failures = admin.get("/api/hospitals/general/audit-events?outcome=failure").get_json()
    assert {e["outcome"] for e in only_failures} == {"failure"} and len(only_failures) == 2
    by_client = admin.get(f"/api/hospitals/general/audit-events?client={key.key}").get_json()
    assert {e["client"] for e in by_client} == {key.key}

    secrets_and_tokens = [key.secret, patient_cred.secret, patient_token, system.token, key.body["token"]]
    with app.app_context():
        metadata = MetaData()
        metadata.reflect(db.engine)
        dump = "".join(
            str(row) for table in metadata.sorted_tables for row in db.session.execute(select(table)).all()
        )
    logs = "\n".join(record.getMessage() for record in caplog.records)
    for value in secrets_and_tokens:
        assert value not in dump and value not in logs
        assert value.split(".")[-1] not in dump  # not even a JWT's signature


def test_audit_events_are_fhir_resources_for_the_right_scope(app, client, make):
    make.hospital("general")
    make.patient("general", "p1")
    reader = make.api_key("general", permissions=["system/*.rs"])
    auditor = make.api_key("general", permissions=["system/AuditEvent.rs"])
    wildcard = FhirClient(client, "general", token_request(client, reader).get_json()["access_token"])
    assert wildcard.get("/Patient/p1").status_code == 200
    flush(app)
    assert wildcard.get("/AuditEvent").status_code == 403  # the audit trail needs a scope naming it
    audit = FhirClient(client, "general", token_request(client, auditor).get_json()["access_token"])
    bundle = audit.search(f"AuditEvent?altid={reader.key}&subtype=read")
    assert bundle["total"] == 1
    event = bundle["entry"][0]["resource"]
    assert event["entity"][0]["what"]["reference"] == "Patient/p1"


def test_patient_tokens_never_see_the_audit_trail(app, client, make):
    make.hospital("general")
    make.patient("general", "p1")
    cred = make.patient_credential("general", "p1")
    patient = FhirClient(client, "general", token_request(client, cred).get_json()["access_token"])
    patient.get("/Patient/p1")
    flush(app)
    assert patient.get("/AuditEvent").status_code == 403
    assert "AuditEvent" not in patient.get("/Patient/p1/$everything").get_data(as_text=True)


def test_last_used_comes_from_the_audit_data(app, client, make):
    make.hospital("general")
    make.patient("general", "p1")
    key = make.api_key("general", permissions=["system/Patient.rs"])
    FhirClient(client, "general", key.body["token"]).get("/Patient/p1")
    flush(app)
    admin = make.as_role("hospital-admin", "general")
    listed = admin.get("/api/hospitals/general/api-keys").get_json()
    assert listed[0]["last_used"] is not None


def test_audit_view_is_for_the_hospitals_admins_only(make):
    make.hospital("general")
    make.hospital("other")
    assert (
        make.as_role("hospital-admin", "other").get("/api/hospitals/general/audit-events").status_code == 403
    )
    assert make.as_role("developer").get("/api/hospitals/general/audit-events").status_code == 403
    admin = make.as_role("hospital-admin", "general")
    assert admin.get("/api/hospitals/general/audit-events?outcome=maybe").status_code == 400


def test_the_admins_filters_combine_and_each_narrows_the_newest_first_list(app, client, make):
    """Each filter alone and with the others: the list holds exactly the events that meet all of
    them, newest first, whichever filter the listing walks (fhir/audit_listing.py)."""
    make.hospital("general")
    for patient in ("p1", "p2"):
        make.patient("general", patient)
    keys = [
        make.api_key("general", permissions=["system/Patient.rs", "system/Observation.rs"]) for _ in range(2)
    ]
    readers = [FhirClient(client, "general", key.body["token"]) for key in keys]
    expected = []  # (client, interaction, outcome, resources named), in the order sent
    for n in range(12):
        reader, key, patient = readers[n % 2], keys[n % 2], f"p{1 + n % 2}"
        if n % 3 == 0:
            assert reader.get(f"/Observation?patient={patient}").status_code == 200
            expected.append((key.key, "search-type", "success", ()))
        elif n % 3 == 1:
            assert reader.get("/Patient/missing").status_code == 404
            expected.append((key.key, "read", "failure", ("Patient/missing",)))
        else:
            assert reader.get(f"/Patient/{patient}").status_code == 200
            expected.append((key.key, "read", "success", (f"Patient/{patient}",)))
        time.sleep(0.002)  # each in a millisecond of its own: the order is the ids'
    flush(app)
    admin = make.as_role("hospital-admin", "general")
    newest_first = expected[::-1]
    first, second = keys[0].key, keys[1].key
    filters = [
        ({}, lambda e: True),
        ({"client": first}, lambda e: e[0] == first),
        ({"outcome": "failure"}, lambda e: e[2] == "failure"),
        ({"outcome": "success", "interaction": "read"}, lambda e: e[2] == "success" and e[1] == "read"),
        ({"client": second, "outcome": "failure"}, lambda e: e[0] == second and e[2] == "failure"),
        ({"patient": "p1"}, lambda e: e[3] == ("Patient/p1",)),  # the events naming the Patient
        ({"patient": "p2", "client": first}, lambda e: e[3] == ("Patient/p2",) and e[0] == first),
        (
            {"interaction": "search-type", "client": second},
            lambda e: e[1] == "search-type" and e[0] == second,
        ),
    ]
    for query, wanted in filters:
        listed = admin.get("/api/hospitals/general/audit-events", query_string=query).get_json()
        seen = [(e["client"], e["interaction"], e["outcome"], tuple(e["resources"])) for e in listed]
        assert seen == [e for e in newest_first if wanted(e)], query
    two = admin.get("/api/hospitals/general/audit-events", query_string={"outcome": "failure", "count": 2})
    assert len(two.get_json()) == 2
    for count in ("0", "1001", "x", "-1"):
        refused = admin.get(f"/api/hospitals/general/audit-events?count={count}")
        assert refused.status_code == 400 and refused.get_json()["error"], count


def test_audit_event_ids_are_time_ordered(app, client, make):
    """UUIDv7 (RFC 9562): each id starts with its event's millisecond, so they sort by time."""
    make.hospital("general")
    make.patient("general", "p1")
    key = make.api_key("general", permissions=["system/Patient.rs", "system/AuditEvent.rs"])
    reader = FhirClient(client, "general", key.body["token"])
    for _ in range(3):
        assert reader.get("/Patient/p1").status_code == 200
        time.sleep(0.002)
    flush(app)
    events = reader.search("AuditEvent?subtype=read&_count=50&_sort=date")["entry"]
    ids = [uuid.UUID(entry["resource"]["id"]) for entry in events]
    assert len(ids) == 3 and all(each.version == 7 for each in ids)
    assert ids == sorted(ids)
    for entry, each in zip(events, ids, strict=True):
        recorded = datetime.fromisoformat(entry["resource"]["recorded"])
        assert each.int >> 80 == int(recorded.timestamp() * 1000)


def test_the_admins_list_is_newest_first(app, client, make):
    """``/audit-events`` pages by the events' time-ordered ids: newest recorded first."""

    make.hospital("general")
    make.patient("general", "p1")
    key = make.api_key("general", permissions=["system/Patient.rs"])
    for _ in range(5):
        client.get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {key.body['token']}"})
        time.sleep(0.003)  # each in a millisecond of its own
    app.extensions["fhirgate_audit"].flush()
    admin = make.as_role("hospital-admin", "general")
    recorded = [e["recorded"] for e in admin.get("/api/hospitals/general/audit-events").get_json()]
    assert len(recorded) == 5 and recorded == sorted(recorded, reverse=True)
    assert [
        e["recorded"] for e in admin.get("/api/hospitals/general/audit-events?count=2").get_json()
    ] == recorded[:2]
