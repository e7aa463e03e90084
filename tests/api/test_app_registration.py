"""An application's SMART App Launch registration (RFC 7591 client metadata names): exact
redirect URIs (https, or http on loopback only, no fragment), a launch URL, a home page and a
publisher, and public clients (token_endpoint_auth_method none) with neither secret nor keys.
Existing request shapes keep working unchanged."""

from __future__ import annotations

import pytest

from tests.conftest import BASE_URL, token_request

REDIRECT = "https://app.example/callback"


def test_an_application_registers_its_smart_metadata(make):
    developer = make.as_role("developer")
    created = developer.post(
        "/api/apps",
        json={
            "client_name": "Steps",
            "redirect_uris": [REDIRECT, "http://127.0.0.1:8765/cb", "http://localhost/cb"],
            "launch_uri": "https://app.example/launch",
            "client_uri": "https://app.example",
            "publisher": "Example Health",
        },
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["client_secret"] and body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["redirect_uris"] == [REDIRECT, "http://127.0.0.1:8765/cb", "http://localhost/cb"]
    shown = developer.get(f"/api/apps/{body['client_id']}").get_json()
    assert (shown["client_name"], shown["name"], shown["publisher"]) == ("Steps", "Steps", "Example Health")
    assert (shown["launch_uri"], shown["client_uri"]) == ("https://app.example/launch", "https://app.example")
    assert "client_secret" not in shown


def test_the_old_request_shape_still_works_and_reads_the_same(make):
    developer = make.as_role("developer")
    body = developer.post("/api/apps", json={"name": "Old"}).get_json()
    assert body["client_secret"] and body["auth_method"] == "client_secret"
    assert body["redirect_uris"] == [] and body["launch_uri"] is None


def test_a_public_client_has_neither_secret_nor_keys_and_cannot_use_client_credentials(make, client):
    developer = make.as_role("developer")
    created = developer.post(
        "/api/apps",
        json={
            "client_name": "Browser app",
            "token_endpoint_auth_method": "none",
            "redirect_uris": [REDIRECT],
        },
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert "client_secret" not in body
    assert body["auth_method"] == "none" and body["token_endpoint_auth_method"] == "none"
    # no credential to prove: the client-credentials grant refuses it (RFC 6749 §4.4)
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": body["client_id"]}
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("redirect_uris", ["http://app.example/cb"]),  # http off loopback
        ("redirect_uris", ["https://app.example/cb#frag"]),
        ("redirect_uris", ["/relative/cb"]),
        ("redirect_uris", ["https://user:pw@app.example/cb"]),
        ("redirect_uris", ["javascript:alert(1)"]),
        ("redirect_uris", ["https://app.example/a b"]),
        ("redirect_uris", "https://app.example/cb"),  # not a list
        ("redirect_uris", [f"https://app.example/{i}" for i in range(21)]),
        ("redirect_uris", ["https://app.example:port/cb"]),
        ("launch_uri", "ftp://app.example/launch"),
        ("client_uri", "http://app.example"),
        ("publisher", ""),
        ("token_endpoint_auth_method", "client_secret_jwt"),
    ],
)
def test_metadata_that_cannot_be_honoured_is_refused(make, field, value):
    developer = make.as_role("developer")
    response = developer.post("/api/apps", json={"client_name": "Bad", field: value})
    assert response.status_code == 400
    body = response.get_json()
    assert set(body) == {"error", "message"}


@pytest.mark.parametrize(
    "extra",
    [
        {"token_endpoint_auth_method": "none"},  # a public client needs redirect URIs
        {"token_endpoint_auth_method": "none", "redirect_uris": [REDIRECT], "client_secret": "a" * 40},
        {"token_endpoint_auth_method": "private_key_jwt"},  # and no keys
        {"name": "One", "client_name": "Another"},
    ],
)
def test_inconsistent_registrations_are_refused(make, extra):
    developer = make.as_role("developer")
    response = developer.post("/api/apps", json={"client_name": "Bad", **extra})
    assert response.status_code == 400, response.get_json()


def test_the_owner_changes_the_registration_and_nobody_else_can(make):
    developer = make.as_role("developer")
    app = make.application(developer, redirect_uris=[REDIRECT])
    changed = developer.patch(
        f"/api/apps/{app.key}", json={"redirect_uris": ["https://app.example/new"], "publisher": "New Co"}
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["redirect_uris"] == ["https://app.example/new"]
    assert changed.get_json()["publisher"] == "New Co"
    assert (
        developer.patch(f"/api/apps/{app.key}", json={"redirect_uris": ["http://evil.example/"]}).status_code
        == 400
    )
    stranger = make.as_role("developer")
    assert stranger.patch(f"/api/apps/{app.key}", json={"publisher": "Mine"}).status_code == 404
    assert developer.get(f"/api/apps/{app.key}").get_json()["publisher"] == "New Co"


def test_a_registered_confidential_app_still_gets_client_credentials_tokens(make, client):
    make.hospital("general")
    app = make.application(redirect_uris=[REDIRECT], publisher="Example Health")
    granted = make.as_role("hospital-admin", "general").put(
        f"/api/hospitals/general/apps/{app.key}", json={"permissions": ["system/Patient.rs"]}
    )
    assert granted.status_code in (200, 201), granted.get_json()
    response = token_request(client, app, resource=f"{BASE_URL}/fhir/general")
    assert response.status_code == 200, response.get_json()


def test_strangers_cannot_change_a_registration(make, client):
    app = make.application(redirect_uris=[REDIRECT])
    body = {"redirect_uris": ["https://evil.example/cb"]}
    assert client.patch(f"/api/apps/{app.key}", json=body).status_code == 401  # no session
    make.hospital("general")
    patient = make.as_role("patient", "general", "p1")
    assert patient.patch(f"/api/apps/{app.key}", json=body).status_code == 403
    assert (
        make.as_role("developer")
        .post("/api/apps", json={"client_name": "Nul", "redirect_uris": ["https://app.example/\u0000cb"]})
        .status_code
        == 400
    )
