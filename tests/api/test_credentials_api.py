"""The management API for the three kinds of credentials, exactly as SPEC.md gives it."""

from __future__ import annotations

import pytest

from tests.conftest import BASE_URL, PASSWORD, Credential, basic_auth, token_request


def test_api_key_list_shows_no_secret(make):
    make.hospital("general")
    cred = make.api_key("general", require_key_headers=True)
    admin = make.as_role("hospital-admin", "general")
    token_request(admin, cred)
    listed = admin.get("/api/hospitals/general/api-keys").get_json()
    assert [item["key"] for item in listed] == [cred.key]
    item = listed[0]
    assert item["name"] == "CRM" and item["permissions"] == ["system/Patient.rs"]
    assert item["created"].endswith("Z") and item["last_used"].endswith("Z")
    assert item["require_key_headers"] is True
    assert cred.secret not in str(listed) and "secret" not in item


def test_deleted_api_key_leaves_the_list_and_deletes_once(make):
    make.hospital("general")
    cred = make.api_key("general")
    admin = make.as_role("hospital-admin", "general")
    assert admin.delete(f"/api/hospitals/general/api-keys/{cred.key}").status_code == 204
    assert admin.get("/api/hospitals/general/api-keys").get_json() == []
    assert admin.delete(f"/api/hospitals/general/api-keys/{cred.key}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "permissions": []},
        {"name": "x", "permissions": ["patient/Patient.rs"]},
        {"name": "x", "permissions": ["system/Patient.xyz"]},
        {"name": "x", "permissions": "system/Patient.rs"},
        {"name": "", "permissions": ["system/Patient.rs"]},
        {"name": "x", "permissions": ["system/Patient.rs"], "token_ttl": "long"},
        {"name": "x", "permissions": ["system/Patient.rs"], "token_ttl": 1},
        {"name": "x", "permissions": ["system/Patient.rs"], "require_key_headers": "yes"},
        {"name": "x", "permissions": [42]},
    ],
)
def test_invalid_api_key_requests_are_400(make, body):
    make.hospital("general")
    admin = make.as_role("hospital-admin", "general")
    response = admin.post("/api/hospitals/general/api-keys", json=body)
    assert response.status_code == 400, response.get_json()
    assert set(response.get_json()) == {"error", "message"}


def test_portal_access_creates_a_patient_login(make, app):
    make.hospital("general")
    make.patient("general", "pat-7")
    admin = make.as_role("hospital-admin", "general")
    response = admin.post(
        "/api/hospitals/general/patients/pat-7/portal-access",
        json={"email": "Jane@Example.org", "password": PASSWORD},
    )
    assert response.status_code == 201
    assert response.get_json() == {"email": "jane@example.org", "hospital": "general", "patient": "pat-7"}
    patient = make.login("jane@example.org")
    created = patient.post("/api/me/credentials", json={"name": "Health App"}).get_json()
    token = token_request(app.test_client(), Credential(created["key"], created["secret"], created))
    assert token.get_json()["patient"] == "pat-7"


def test_portal_access_needs_a_patient_of_that_hospital(make):
    make.hospital("general")
    make.hospital("other")
    make.patient("other", "elsewhere")
    admin = make.as_role("hospital-admin", "general")
    for pid in ("nobody", "elsewhere"):
        response = admin.post(
            f"/api/hospitals/general/patients/{pid}/portal-access",
            json={"email": "x@example.org", "password": PASSWORD},
        )
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_portal_access_conflict_and_bad_input(make):
    make.hospital("general")
    make.patient("general", "pat-7")
    admin = make.as_role("hospital-admin", "general")
    path = "/api/hospitals/general/patients/pat-7/portal-access"
    assert admin.post(path, json={"email": "a@example.org", "password": PASSWORD}).status_code == 201
    assert admin.post(path, json={"email": "A@example.org", "password": PASSWORD}).status_code == 409
    assert admin.post(path, json={"email": "b@example.org", "password": "short"}).status_code == 400
    assert admin.post(path, json={"email": "not-an-email", "password": PASSWORD}).status_code == 400
    bad_id = "/api/hospitals/general/patients/bad id!/portal-access"
    assert admin.post(bad_id, json={"email": "c@example.org", "password": PASSWORD}).status_code == 400


def test_patient_holds_many_named_credentials(make):
    make.hospital("general")
    patient = make.as_role("patient", "general", "p1")
    first = patient.post("/api/me/credentials", json={"name": "Health App"})
    second = patient.post("/api/me/credentials", json={"name": "Fitness"})
    assert first.status_code == second.status_code == 201
    body = first.get_json()
    assert set(body) == {"key", "secret", "name", "created", "last_used", "permissions", "expires"}
    assert first.headers["Cache-Control"] == "no-store"
    listed = patient.get("/api/me/credentials").get_json()
    assert [(c["name"], c["last_used"]) for c in listed] == [("Health App", None), ("Fitness", None)]
    assert set(listed[0]) == {"key", "name", "created", "last_used", "permissions", "expires"}


def test_application_with_a_given_secret(make, sandbox, client):
    developer = make.as_role("developer")
    secret = "my-own_secret.that~is-long-enough-1234"
    response = developer.post("/api/apps", json={"name": "Scheduler", "client_secret": secret})
    assert response.status_code == 201
    body = response.get_json()
    assert body["client_secret"] == secret
    assert token_request(client, Credential(body["client_id"], secret, body)).status_code == 200


@pytest.mark.parametrize(
    "secret",
    [
        "short",
        "x" * 31,
        12345,
        " " + "y" * 40,
        "z" * 600,
        # characters a client that does not form-encode Basic credentials sends wrong
        "with+plus+and/slash/" + "y" * 30,
        "percent%41" + "y" * 30,
        "colon:" + "y" * 30,
        "space inside " + "y" * 30,
        "ünïcödé" + "y" * 30,
    ],
)
def test_a_given_secret_too_weak_or_not_url_safe_is_400(make, secret):
    developer = make.as_role("developer")
    response = developer.post("/api/apps", json={"name": "Scheduler", "client_secret": secret})
    assert response.status_code == 400


def test_application_lists_its_hospitals_sandbox_first(make, sandbox):
    make.hospital("alpha")
    developer = make.as_role("developer")
    cred = make.application(developer)
    admin = make.as_role("hospital-admin", "alpha")
    assert (
        admin.put(
            f"/api/hospitals/alpha/apps/{cred.key}", json={"permissions": ["system/Patient.rs"]}
        ).status_code
        == 201
    )
    updated = admin.put(
        f"/api/hospitals/alpha/apps/{cred.key}", json={"permissions": ["system/Observation.rs"]}
    )
    assert updated.status_code == 200
    hospitals = developer.get(f"/api/apps/{cred.key}/hospitals").get_json()
    assert [h["hospital"] for h in hospitals] == ["sandbox", "alpha"]
    assert hospitals[0]["sandbox"] is True and hospitals[0]["permissions"] == ["system/*.rs"]
    assert hospitals[1]["fhir_base_url"] == f"{BASE_URL}/fhir/alpha"
    assert hospitals[1]["permissions"] == ["system/Observation.rs"]
    grants = admin.get("/api/hospitals/alpha/apps").get_json()
    assert [(g["client_id"], g["permissions"]) for g in grants] == [(cred.key, ["system/Observation.rs"])]


def test_grant_for_an_unknown_application_is_404(make):
    make.hospital("alpha")
    admin = make.as_role("hospital-admin", "alpha")
    assert (
        admin.put(
            "/api/hospitals/alpha/apps/app_nope", json={"permissions": ["system/Patient.rs"]}
        ).status_code
        == 404
    )
    assert admin.delete("/api/hospitals/alpha/apps/app_nope").status_code == 404


def test_deleted_application_cannot_get_tokens(make, sandbox, client):
    developer = make.as_role("developer")
    cred = make.application(developer)
    assert developer.delete(f"/api/apps/{cred.key}").status_code == 204
    assert developer.get("/api/apps").get_json() == []
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic_auth(cred.key, cred.secret)
    )
    assert response.status_code == 401
