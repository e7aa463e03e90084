"""End to end: a hospital of this fhirgate connected to a second fhirgate process, the upstream
"EHR", once by client credentials with a secret and once by SMART Backend Services (a key pair
registered at the upstream). A developer switches the integration on with the EHR credentials
the upstream's admin gave them, then reads, searches, pages and writes through this server,
with the X-Client-Id/X-Client-Secret headers and with a token; the upstream is asked for a
token once per token lifetime, not per request."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from oauth.jws import b64url_encode
from tests.conftest import BASE_URL, token_request
from tests.integrations.upstream_ehr import upstream_ehr

HOSPITAL = "north"
OBSERVATIONS = 25


def _seed_bundle() -> dict:
    entries = [
        {
            "resource": {"resourceType": "Patient", "id": "p1", "name": [{"family": "Upstream"}]},
            "request": {"method": "PUT", "url": "Patient/p1"},
        }
    ]
    for n in range(OBSERVATIONS):
        observation = {
            "resourceType": "Observation",
            "id": f"o{n}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": f"2026-01-{n % 28 + 1:02d}",
            "valueQuantity": {"value": 60 + n, "unit": "/min"},
        }
        entries.append({"resource": observation, "request": {"method": "PUT", "url": f"Observation/o{n}"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.fixture(scope="module")
def ehr(tmp_path_factory):
    with upstream_ehr(tmp_path_factory.mktemp("ehr")) as upstream:
        loader = upstream.api_key(["system/*.cruds"])
        upstream.load(loader, _seed_bundle())
        yield upstream


def _connect(make, ehr, **fields) -> None:
    make.hospital(HOSPITAL, "North (upstream EHR)")
    body = {
        "base_url": ehr.fhir_base,
        "auth_kind": "client_secret",
        "token_url": ehr.token_url,
        "scope": ["system/Patient.cruds", "system/Observation.cruds"],
        **fields,
    }
    response = make.as_role("superadmin").put(f"/api/hospitals/{HOSPITAL}/upstream", json=body)
    assert response.status_code == 200, response.get_json()


def _switched_on(make, credentials: dict, permissions=None):
    developer = make.as_role("developer")
    application = make.application(developer)
    body = {"credentials": credentials, "client_secret": application.secret}
    if permissions is not None:
        body["permissions"] = permissions
    response = developer.put(f"/api/apps/{application.key}/integrations/{HOSPITAL}", json=body)
    assert response.status_code == 200, response.get_json()
    return developer, application


def _upstream_calls(app, monkeypatch) -> list:
    """Every request the proxy sends upstream from now on (the real client still sends it)."""
    http = app.extensions["fhirgate_upstream_proxy"].http
    calls: list = []
    real = http.request
    monkeypatch.setattr(http, "request", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def _local(url: str) -> str:
    """A URL of this server, as the test client takes it."""
    assert url.startswith(f"{BASE_URL}/fhir/{HOSPITAL}"), url
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _exercise(client, headers: dict) -> None:
    """Read, search, page and write through this server."""
    base = f"/fhir/{HOSPITAL}"
    read = client.get(f"{base}/Patient/p1", headers=headers)
    assert read.status_code == 200, read.get_data(as_text=True)
    assert read.get_json()["name"] == [{"family": "Upstream"}] and read.headers["ETag"]

    first = client.get(f"{base}/Observation?subject=Patient/p1&_count=10&_total=accurate", headers=headers)
    assert first.status_code == 200, first.get_data(as_text=True)
    bundle = first.get_json()
    assert bundle["total"] == OBSERVATIONS and len(bundle["entry"]) == 10
    assert all(
        entry["fullUrl"].startswith(f"{BASE_URL}/fhir/{HOSPITAL}/Observation/") for entry in bundle["entry"]
    )
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    seen = {entry["resource"]["id"] for entry in bundle["entry"]}
    following = links.get("next")
    while following:
        page = client.get(_local(following), headers=headers)
        assert page.status_code == 200, page.get_data(as_text=True)
        body = page.get_json()
        seen |= {entry["resource"]["id"] for entry in body["entry"]}
        following = {link["relation"]: link["url"] for link in body["link"]}.get("next")
    assert seen == {f"o{n}" for n in range(OBSERVATIONS)}

    new = {
        "resourceType": "Observation",
        "status": "preliminary",
        "code": {"text": "written through the proxy"},
        "subject": {"reference": "Patient/p1"},
    }
    fhir_headers = {**headers, "Content-Type": "application/fhir+json"}
    created = client.post(f"{base}/Observation", data=json.dumps(new), headers=fhir_headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    location = created.headers["Location"]
    assert location.startswith(f"{BASE_URL}/fhir/{HOSPITAL}/Observation/")
    new_id = created.get_json()["id"]
    changed = {**new, "id": new_id, "status": "final"}
    updated = client.put(f"{base}/Observation/{new_id}", data=json.dumps(changed), headers=fhir_headers)
    assert updated.status_code == 200 and updated.get_json()["status"] == "final"
    assert client.delete(f"{base}/Observation/{new_id}", headers=headers).status_code in (200, 204)
    assert client.get(f"{base}/Observation/{new_id}", headers=headers).status_code == 410


def _through_headers_and_a_token(app, client, application) -> None:
    headers = {"X-Client-Id": application.key, "X-Client-Secret": application.secret}
    _exercise(client, headers)
    issued = token_request(client, application, resource=f"{BASE_URL}/fhir/{HOSPITAL}")
    assert issued.status_code == 200, issued.get_json()
    _exercise(client, {"Authorization": f"Bearer {issued.get_json()['access_token']}"})


def test_client_credentials_upstream_end_to_end(app, make, client, ehr):
    key = ehr.api_key(["system/Patient.cruds", "system/Observation.cruds"])
    _connect(make, ehr)
    _, application = _switched_on(make, {"client_id": key["key"], "client_secret": key["secret"]})
    tokens = app.extensions["fhirgate_upstream_proxy"].tokens
    before = tokens.requested
    _through_headers_and_a_token(app, client, application)
    assert tokens.requested - before == 1  # one upstream token for ~30 proxied requests


def test_backend_services_upstream_end_to_end(app, make, client, ehr):
    private = ec.generate_private_key(ec.SECP384R1())
    numbers = private.public_key().public_numbers()
    jwk = {
        "kty": "EC", "crv": "P-384", "kid": "platform-1", "alg": "ES384",
        "x": b64url_encode(numbers.x.to_bytes(48, "big")), "y": b64url_encode(numbers.y.to_bytes(48, "big")),
    }  # fmt: skip
    key = ehr.api_key(["system/Patient.cruds", "system/Observation.cruds"], jwks={"keys": [jwk]})
    _connect(make, ehr, auth_kind="backend_services")
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    _, application = _switched_on(make, {"client_id": key["key"], "private_key": pem, "kid": "platform-1"})
    tokens = app.extensions["fhirgate_upstream_proxy"].tokens
    before = tokens.requested
    _through_headers_and_a_token(app, client, application)
    assert tokens.requested - before == 1


def test_scopes_are_enforced_before_any_upstream_call(app, make, client, ehr, monkeypatch):
    key = ehr.api_key(["system/Patient.cruds", "system/Observation.cruds"])
    _connect(make, ehr)
    _, application = _switched_on(
        make, {"client_id": key["key"], "client_secret": key["secret"]}, permissions=["system/Patient.rs"]
    )
    calls = _upstream_calls(app, monkeypatch)
    headers = {"X-Client-Id": application.key, "X-Client-Secret": application.secret}
    refused = client.get(f"/fhir/{HOSPITAL}/Observation?subject=Patient/p1", headers=headers)
    assert refused.status_code == 403 and refused.get_json()["resourceType"] == "OperationOutcome"
    written = client.post(
        f"/fhir/{HOSPITAL}/Patient", data=json.dumps({"resourceType": "Patient"}), headers=headers
    )
    assert written.status_code == 403
    assert calls == []
    assert client.get(f"/fhir/{HOSPITAL}/Patient/p1", headers=headers).status_code == 200
    assert calls


def test_a_wrong_or_old_secret_and_another_application_get_nothing(app, make, client, ehr):
    key = ehr.api_key(["system/Patient.rs"])
    _connect(make, ehr, scope=["system/Patient.rs"])
    developer, application = _switched_on(make, {"client_id": key["key"], "client_secret": key["secret"]})
    path = f"/fhir/{HOSPITAL}/Patient/p1"
    wrong = client.get(path, headers={"X-Client-Id": application.key, "X-Client-Secret": "apps_wrong"})
    assert wrong.status_code == 401 and key["secret"] not in wrong.get_data(as_text=True)
    make.hospital("sandbox", "Sandbox")  # where the stranger's token is for
    stranger = make.application()
    other = client.get(path, headers={"X-Client-Id": stranger.key, "X-Client-Secret": stranger.secret})
    assert other.status_code == 403  # its integration is not switched on
    stranger_token = token_request(client, stranger).get_json()["access_token"]
    assert client.get(path, headers={"Authorization": f"Bearer {stranger_token}"}).status_code == 401

    issued = token_request(client, application, resource=f"{BASE_URL}/fhir/{HOSPITAL}").get_json()
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert client.get(path, headers=bearer).status_code == 200
    # Rotated without the current secret: the old secret, its token and the new secret open nothing.
    rotated = developer.post(f"/api/apps/{application.key}/secret")
    new_secret = rotated.get_json()["client_secret"]
    old = client.get(path, headers={"X-Client-Id": application.key, "X-Client-Secret": application.secret})
    assert old.status_code == 401
    assert client.get(path, headers=bearer).status_code == 401
    fresh = client.get(path, headers={"X-Client-Id": application.key, "X-Client-Secret": new_secret})
    assert fresh.status_code == 401 and "enter them again" in fresh.get_json()["issue"][0]["diagnostics"]


def test_metadata_is_the_upstreams_with_this_servers_security(client, make, ehr):
    _connect(make, ehr)
    statement = client.get(f"/fhir/{HOSPITAL}/metadata").get_json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["implementation"]["url"] == f"{BASE_URL}/fhir/{HOSPITAL}"
    security = json.dumps(statement["rest"][0]["security"])
    assert f"{BASE_URL}/oauth/token" in security and ehr.url not in json.dumps(statement)
    # Only what the proxy forwards: no system operation ($export is refused), JSON only, and of the
    # upstream's type operations only Patient/$everything.
    rest = statement["rest"][0]
    assert "operation" not in rest and statement["format"] == ["application/fhir+json", "json"]
    operations = {(r["type"], op["name"]) for r in rest["resource"] for op in r.get("operation", [])}
    assert operations <= {("Patient", "everything")}


def test_the_fast_path_forwards_a_tokens_reads_and_searches_as_the_view_does(
    app, make, client, ehr, monkeypatch
):
    import fhir.views

    key = ehr.api_key(["system/Patient.rs", "system/Observation.rs"])
    _connect(make, ehr, scope=["system/Patient.rs", "system/Observation.rs"])
    _, application = _switched_on(make, {"client_id": key["key"], "client_secret": key["secret"]})
    token = token_request(client, application, resource=f"{BASE_URL}/fhir/{HOSPITAL}").get_json()[
        "access_token"
    ]
    bearer = {"Authorization": f"Bearer {token}"}
    paths = [f"/fhir/{HOSPITAL}/Patient/p1", f"/fhir/{HOSPITAL}/Observation?subject=Patient/p1&_count=5",
             f"/fhir/{HOSPITAL}/Patient/nobody"]  # fmt: skip
    client.get(paths[0], headers=bearer)  # the worker learns the hospital is connected
    viewed = []
    real = fhir.views.forward
    monkeypatch.setattr(fhir.views, "forward", lambda upstream: viewed.append(upstream) or real(upstream))
    fast = [client.get(path, headers=bearer) for path in paths]
    assert viewed == []  # all answered beneath Flask
    monkeypatch.setitem(app.config, "FHIRGATE_PROXY_FAST_PATH", False)
    slow = [client.get(path, headers=bearer) for path in paths]
    assert len(viewed) == len(paths)
    for quick, full in zip(fast, slow, strict=True):
        assert quick.status_code == full.status_code
        assert quick.headers["Content-Type"] == full.headers["Content-Type"]
        if quick.get_json()["resourceType"] == "Bundle":
            assert [e["fullUrl"] for e in quick.get_json()["entry"]] == [
                e["fullUrl"] for e in full.get_json()["entry"]
            ]
        else:
            assert quick.get_json() == full.get_json()
    assert [r.status_code for r in fast] == [200, 200, 404]


def test_discovery_stays_this_servers_at_a_connected_hospital(client, make, ehr):
    _connect(make, ehr)
    discovery = client.get(f"/fhir/{HOSPITAL}/.well-known/smart-configuration")
    assert discovery.status_code == 200
    assert discovery.get_json()["token_endpoint"] == f"{BASE_URL}/oauth/token"


def test_what_an_include_or_a_bundle_entry_would_add_is_checked_before_sending(
    app, make, client, ehr, monkeypatch
):
    """Patient.rs alone: a search of Patients that would bring Observations along, or a batch
    entry that reads a compartment or runs an operation, is refused before any upstream call."""
    key = ehr.api_key(["system/Patient.cruds", "system/Observation.cruds"])
    _connect(make, ehr)
    _, application = _switched_on(
        make, {"client_id": key["key"], "client_secret": key["secret"]}, permissions=["system/Patient.rs"]
    )
    calls = _upstream_calls(app, monkeypatch)
    token = token_request(client, application, resource=f"{BASE_URL}/fhir/{HOSPITAL}").get_json()[
        "access_token"
    ]
    for headers in ({"X-Client-Id": application.key, "X-Client-Secret": application.secret},
                    {"Authorization": f"Bearer {token}"}):  # fmt: skip
        queries = ("_revinclude=Observation:subject", "_include=Patient:general-practitioner",
                   "_revinclude=*", "_include:iterate=Patient:organization:Organization",
                   "_has:Observation:subject:code=8867-4", "general-practitioner:Practitioner.name=x",
                   "organization.name=x")  # fmt: skip
        for query in queries:
            refused = client.get(f"/fhir/{HOSPITAL}/Patient?_id=p1&{query}", headers=headers)
            assert refused.status_code == 403, (query, refused.get_data(as_text=True))
        urls = ("Patient/p1/Observation", "Patient/p1/$everything", "Observation?subject=Patient/p1",
                f"{ehr.fhir_base}/Observation/o1", "Patient?_revinclude=Observation:subject")  # fmt: skip
        for url in urls:
            batch = {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"request": {"method": "GET", "url": url}}],
            }
            refused = client.post(
                f"/fhir/{HOSPITAL}",
                data=json.dumps(batch),
                headers={**headers, "Content-Type": "application/fhir+json"},
            )
            assert refused.status_code == 403, (url, refused.get_data(as_text=True))
    assert calls == []
    allowed = client.get(f"/fhir/{HOSPITAL}/Patient?_id=p1", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200 and calls
