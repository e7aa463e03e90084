"""The audit trail behind a wildcard, from the attacker's side.

Every application reaches the sandbox hospital with ``system/*.rs`` without any grant, and a
hospital may give an API key ``system/*.rs``. The audit trail (AuditEvent: other clients'
ids, addresses, patients and their search terms) must stay out of their reach on every way
in: narrowing at the token endpoint (view and fast path), tokens already issued with such a
narrowed scope, and at the FHIR API reads, searches, history at all three levels,
``_include``/``_revinclude``, chains, ``$everything``, batch GET entries, conditional
interactions and conditional references. Only a scope that names AuditEvent reads it.
"""

from __future__ import annotations

import orjson
import pytest

from app.extensions import db
from oauth.keys import keyring
from oauth.models import OAuthClient
from oauth.tokens import mint_access_token
from tests.conftest import BASE_URL, basic_auth, token_request
from tests.fhir.conftest import FhirClient

NARROWED = [
    "system/AuditEvent.rs",
    "system/AuditEvent.r",
    "system/AuditEvent.s",
    "system/AuditEvent.read",
    "system/AuditEvent.rs?outcome=0",
    "system/Patient.rs system/AuditEvent.rs",
]


@pytest.fixture
def trail(app, client, make, sandbox):
    """The sandbox with a patient, a List that points at audit events, and audit events
    about the patient made by another client's traffic."""
    owner = make.api_key(sandbox, permissions=["system/*.cruds"])
    admin = FhirClient(client, sandbox, owner.body["token"])
    admin.put("/Patient/p1", {"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}]})
    for _ in range(3):
        assert admin.get("/Patient/p1").status_code == 200
    app.extensions["fhirgate_audit"].flush()
    auditor_key = make.api_key(sandbox, permissions=["system/AuditEvent.rs"])
    auditor = FhirClient(client, sandbox, auditor_key.body["token"])
    events = auditor.ids("AuditEvent?patient=p1&_count=100")
    assert len(events) >= 3  # an explicit grant reads the trail
    items = [{"item": {"reference": f"AuditEvent/{event}"}} for event in events]
    admin.put(
        "/List/l1",
        {"resourceType": "List", "id": "l1", "status": "current", "mode": "working", "entry": items},
    )
    return {"events": events, "admin": admin, "auditor": auditor}


@pytest.fixture
def attackers(client, make, sandbox):
    """A developer's application (no grant: ``system/*.rs`` at the sandbox) and a hospital
    API key with ``system/*.rs``; both by client_secret_basic."""
    return {
        "application": make.application(),
        "api key": make.api_key(sandbox, permissions=["system/*.rs"]),
    }


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "view"])
@pytest.mark.parametrize("scope", NARROWED)
def test_a_wildcard_cannot_be_narrowed_to_the_audit_trail(client, app, attackers, monkeypatch, fast, scope):
    monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_FAST_PATH", fast)
    for cred in attackers.values():
        assert token_request(client, cred).status_code == 200  # the client is cached now
        for form in ({}, {"resource": f"{BASE_URL}/fhir/sandbox"}):
            response = token_request(client, cred, scope=scope, **form)
            assert response.status_code == 400, (scope, response.get_json())
            assert response.get_json()["error"] == "invalid_scope"
        post = {"grant_type": "client_credentials", "client_id": cred.key, "client_secret": cred.secret}
        response = client.post("/oauth/token", data={**post, "scope": scope})
        assert response.status_code == 400, scope


def test_a_token_already_narrowed_to_the_audit_trail_stops_working(app, client, attackers, trail):
    """Tokens issued before the fix (minted here as the old narrowing did) are dead at the FHIR
    API, read fast path included, and inactive at introspection."""
    event = trail["events"][0]
    for name, cred in attackers.items():
        with app.app_context():
            row = db.session.get(OAuthClient, cred.key)
            token = mint_access_token(
                row, "sandbox", "system/AuditEvent.rs", 300, BASE_URL, keyring().signing_key()
            ).access_token
        fhir = FhirClient(client, "sandbox", token)
        for path in (f"/AuditEvent/{event}", "/AuditEvent?_count=100", f"/AuditEvent/{event}/_history"):
            response = fhir.get(path)
            assert response.status_code == 401, (name, path, response.status_code)
            assert event not in response.get_data(as_text=True)
        introspected = client.post(
            "/oauth/introspect", data={"token": token}, headers=basic_auth(cred.key, cred.secret)
        )
        assert introspected.get_json() == {"active": False}, name


def test_a_wildcard_token_reaches_the_audit_trail_nowhere(client, attackers, trail):
    events = trail["events"]
    event = events[0]
    for name, cred in attackers.items():
        response = token_request(client, cred, resource=f"{BASE_URL}/fhir/sandbox")
        assert response.status_code == 200
        fhir = FhirClient(client, "sandbox", response.get_json()["access_token"])

        def refused(path: str, status: int = 403) -> None:
            response = fhir.get(path)
            assert response.status_code == status, (name, path, response.status_code)
            assert not any(e in response.get_data(as_text=True) for e in events), (name, path)

        def hidden(response, what: str) -> None:
            # The List's own references name the events; an event itself shows as a resource
            # (its "id") or an entry (a fullUrl ending in its id).
            body = response.get_data(as_text=True)
            assert response.status_code == 200, (name, what, response.status_code, body[:300])
            assert '"resourceType":"AuditEvent"' not in body, (name, what)
            leaked = [e for e in events if f'"id":"{e}"' in body or f'/AuditEvent/{e}"' in body]
            assert not leaked, (name, what)

        refused(f"/AuditEvent/{event}")
        refused("/AuditEvent/no-such-event")  # the same answer: existence is not confirmed
        refused(f"/AuditEvent/{event}/_history/1")
        refused(f"/AuditEvent/{event}/_history")
        refused("/AuditEvent/_history")
        refused("/AuditEvent?_count=100")
        refused("/AuditEvent?patient=p1")
        searched = fhir.post(
            "/AuditEvent/_search", "_count=100", content_type="application/x-www-form-urlencoded"
        )
        assert searched.status_code == 403, name
        hidden(fhir.get("/_history?_count=1000"), "whole-hospital history")
        hidden(fhir.get("/Patient?_id=p1&_revinclude=AuditEvent:patient"), "revinclude patient")
        hidden(fhir.get("/Patient?_id=p1&_revinclude=AuditEvent:entity"), "revinclude entity")
        hidden(fhir.get("/List?_id=l1&_include=List:item"), "include")
        hidden(fhir.get("/List?_id=l1&_include=List:item:AuditEvent"), "include typed")
        hidden(fhir.get("/Patient/p1/$everything?_count=1000"), "$everything")
        # A chain into the trail is no oracle: a value that matches the events finds no more
        # than one that does not.
        chained = fhir.ids("List?item:AuditEvent.patient=p1")
        assert chained == fhir.ids("List?item:AuditEvent.patient=nobody") == [], name
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": url}}
                for url in (
                    f"AuditEvent/{event}",
                    "AuditEvent?_count=100",
                    f"AuditEvent/{event}/_history",
                    "AuditEvent/_history",
                    "_history?_count=1000",
                    "Patient?_revinclude=AuditEvent:patient",
                    "Patient/p1/$everything",
                )
            ],
        }
        answered = fhir.post("", batch)
        hidden(answered, "batch")
        statuses = [entry["response"]["status"] for entry in answered.get_json()["entry"]]
        assert statuses[:2] == ["403"] * 2, (name, statuses)
        assert all(status in ("403", "400") for status in statuses[2:4]), (name, statuses)


def test_conditional_criteria_and_references_do_not_see_the_audit_trail(client, make, trail):
    """A hospital key that may write everything but names no AuditEvent: conditional
    interactions on the trail are refused, and a conditional reference into it resolves to
    nothing whether or not events match (no oracle, no id)."""
    writer = FhirClient(
        client, "sandbox", make.api_key("sandbox", permissions=["system/*.cruds"]).body["token"]
    )
    events = trail["events"]
    assert writer.get("/AuditEvent?patient=p1").status_code == 403
    stored = trail["auditor"].get(f"/AuditEvent/{events[0]}").get_json()
    copy = {key: value for key, value in stored.items() if key not in ("id", "meta")}
    created = writer.post("/AuditEvent", copy, headers={"If-None-Exist": "patient=p1"})
    assert created.status_code == 403
    assert writer.put("/AuditEvent?patient=p1", copy).status_code == 403
    # Conditional delete finds nothing it may see (a no-op answers 204 before any scope check:
    # the conditional interactions' own business); nothing is deleted.
    assert writer.delete("/AuditEvent?patient=p1").status_code in (204, 403)
    assert set(events) <= set(trail["auditor"].ids("AuditEvent?patient=p1&_count=100"))

    def transaction(criteria: str):
        entry = {
            "fullUrl": "urn:uuid:0b0f8c9e-2a4f-4d58-9d0a-5f1d8a4f9c01",
            "resource": {
                "resourceType": "List",
                "status": "current",
                "mode": "working",
                "entry": [{"item": {"reference": f"AuditEvent?{criteria}"}}],
            },
            "request": {"method": "POST", "url": "List"},
        }
        return writer.post("", {"resourceType": "Bundle", "type": "transaction", "entry": [entry]})

    matching, missing = transaction("patient=p1"), transaction("patient=nobody")
    assert matching.status_code == missing.status_code != 200
    for response in (matching, missing):
        assert not any(event in response.get_data(as_text=True) for event in events)
    lists = trail["admin"].ids("List?_count=100")
    assert lists == ["l1"]  # nothing was stored


def test_only_a_scope_naming_the_audit_trail_reads_it(client, make, trail):
    """The explicit grant keeps working, and a token narrowed from it too."""
    key = make.api_key("sandbox", permissions=["system/AuditEvent.rs", "system/*.rs"])
    for scope in (
        "system/AuditEvent.rs",
        "system/AuditEvent.r system/Patient.rs",
        "system/AuditEvent.rs?outcome=0",
    ):
        response = token_request(client, key, scope=scope)
        assert response.status_code == 200, (scope, response.get_json())
    token = token_request(client, key, scope="system/AuditEvent.rs").get_json()["access_token"]
    auditor = FhirClient(client, "sandbox", token)
    assert set(trail["events"]) <= set(auditor.ids("AuditEvent?_count=1000"))
    body = orjson.loads(auditor.get(f"/AuditEvent/{trail['events'][0]}").get_data())
    assert body["resourceType"] == "AuditEvent"
