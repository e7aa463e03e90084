"""Token endpoint success paths for the three kinds of credentials (RFC 6749 §4.4)."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import BASE_URL, basic_auth, token_request

RFC9068_CLAIMS = {"iss", "sub", "client_id", "aud", "exp", "iat", "jti", "scope"}


def decode_with_jwks(client, token: str) -> jwt.Token:
    """Verify a token the way a resource server would: only with the published JWK Set."""
    keys = KeySet.import_key_set(client.get("/oauth/jwks").get_json())
    return jwt.decode(token, keys, algorithms=["ES256"])


def test_api_key_creation_returns_a_token_that_verifies_against_the_jwks(client, make):
    make.hospital("general")
    cred = make.api_key("general", permissions=["system/Patient.rs", "system/Observation.rs"])
    body = cred.body
    assert body["key"].startswith("hk_") and body["secret"].startswith("hks_")
    assert body["expires_in"] == 86400
    assert body["permissions"] == ["system/Patient.rs", "system/Observation.rs"]

    token = decode_with_jwks(client, body["token"])
    assert token.header["typ"] == "at+jwt" and token.header["alg"] == "ES256" and token.header["kid"]
    claims = token.claims
    assert set(claims) >= RFC9068_CLAIMS
    assert claims["iss"] == BASE_URL
    assert claims["sub"] == claims["client_id"] == cred.key
    assert claims["aud"] == f"{BASE_URL}/fhir/general"
    assert claims["exp"] - claims["iat"] == 86400
    assert claims["scope"] == "system/Patient.rs system/Observation.rs"
    assert "patient" not in claims


def test_api_key_token_lifetime_is_settable_and_capped(client, make, app):
    make.hospital("general")
    cred = make.api_key("general", token_ttl=3600)
    assert cred.body["expires_in"] == 3600
    admin = make.as_role("hospital-admin", "general")
    too_long = app.config["FHIRGATE_API_KEY_TOKEN_TTL_MAX"] + 1
    response = admin.post(
        "/api/hospitals/general/api-keys",
        json={"name": "x", "permissions": ["system/Patient.rs"], "token_ttl": too_long},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_new_token_for_a_key_with_client_secret_basic(client, make):
    make.hospital("general")
    cred = make.api_key("general")
    response = token_request(client, cred)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "system/Patient.rs"
    assert decode_with_jwks(client, body["access_token"]).claims["client_id"] == cred.key


def test_new_token_for_a_key_with_client_secret_post(client, make):
    make.hospital("general")
    cred = make.api_key("general")
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": cred.key, "client_secret": cred.secret},
    )
    assert response.status_code == 200, response.get_json()
    assert decode_with_jwks(client, response.get_json()["access_token"]).claims["sub"] == cred.key


def test_scope_can_be_narrowed_within_the_grant(client, make):
    make.hospital("general")
    cred = make.api_key("general", permissions=["system/Patient.rs", "system/Observation.cruds"])
    response = token_request(client, cred, scope="system/Observation.r system/Patient.s")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["scope"] == "system/Observation.r system/Patient.s"


def test_v1_scope_is_covered_by_the_equivalent_v2_grant(client, make):
    make.hospital("general")
    cred = make.api_key("general", permissions=["system/*.cruds"])
    response = token_request(client, cred, scope="system/Observation.read system/Patient.write")
    assert response.status_code == 200, response.get_json()


def test_patient_credential_token_carries_patient_and_only_patient_scopes(client, make):
    make.hospital("general")
    cred = make.patient_credential("general", patient="pat-42")
    assert cred.key.startswith("pk_") and cred.secret.startswith("pks_")
    response = token_request(client, cred)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["patient"] == "pat-42"
    assert body["scope"] == "patient/*.rs"
    claims = decode_with_jwks(client, body["access_token"]).claims
    assert claims["patient"] == "pat-42"
    assert claims["aud"] == f"{BASE_URL}/fhir/general"
    assert all(scope.startswith("patient/") for scope in claims["scope"].split())


def test_patient_credential_cannot_ask_for_system_scopes(client, make):
    make.hospital("general")
    cred = make.patient_credential("general")
    response = token_request(client, cred, scope="system/Patient.rs")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


def test_application_reaches_the_sandbox_at_once(client, make, sandbox):
    app_cred = make.application()
    assert app_cred.key.startswith("app_") and app_cred.secret.startswith("apps_")
    response = token_request(client, app_cred)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["scope"] == "system/*.rs"
    assert decode_with_jwks(client, body["access_token"]).claims["aud"] == f"{BASE_URL}/fhir/sandbox"


def test_granted_application_names_the_hospital_with_resource(client, make, sandbox):
    make.hospital("general")
    app_cred = make.application()
    admin = make.as_role("hospital-admin", "general")
    grant = admin.put(
        f"/api/hospitals/general/apps/{app_cred.key}", json={"permissions": ["system/Patient.r"]}
    )
    assert grant.status_code == 201, grant.get_json()

    response = token_request(client, app_cred, resource=f"{BASE_URL}/fhir/general")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["scope"] == "system/Patient.r"
    assert decode_with_jwks(client, body["access_token"]).claims["aud"] == f"{BASE_URL}/fhir/general"

    sandbox_token = token_request(client, app_cred, resource=f"{BASE_URL}/fhir/sandbox/")
    assert sandbox_token.status_code == 200
    assert sandbox_token.get_json()["scope"] == "system/*.rs"


def test_application_reaching_two_hospitals_gets_a_token_for_both_without_resource(client, make, sandbox):
    make.hospital("general")
    app_cred = make.application()
    admin = make.as_role("hospital-admin", "general")
    admin.put(f"/api/hospitals/general/apps/{app_cred.key}", json={"permissions": ["system/Patient.r"]})
    response = token_request(client, app_cred)
    assert response.status_code == 200, response.get_json()
    claims = decode_with_jwks(client, response.get_json()["access_token"]).claims
    assert claims["aud"] == [f"{BASE_URL}/fhir/general", f"{BASE_URL}/fhir/sandbox"]


def test_resource_of_a_hospital_not_granted_is_invalid_target(client, make, sandbox):
    make.hospital("general")
    app_cred = make.application()
    response = token_request(client, app_cred, resource=f"{BASE_URL}/fhir/general")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_target"


def test_hospital_key_with_another_hospitals_resource_is_invalid_target(client, make):
    make.hospital("general")
    make.hospital("other")
    cred = make.api_key("general")
    response = token_request(client, cred, resource=f"{BASE_URL}/fhir/other")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_target"
    ok = token_request(client, cred, resource=f"{BASE_URL}/fhir/general")
    assert ok.status_code == 200


def test_client_id_in_body_matching_basic_credentials_is_accepted(client, make):
    make.hospital("general")
    cred = make.api_key("general")
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": cred.key},
        headers=basic_auth(cred.key, cred.secret),
    )
    assert response.status_code == 200, response.get_json()


def test_issuing_tokens_writes_nothing_per_token(client, make, app):
    from sqlalchemy import event

    from app.extensions import db

    make.hospital("general")
    cred = make.api_key("general")
    token_request(client, cred)  # first use records last_used_at (at most once a minute)
    writes = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(5):
            assert token_request(client, cred).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [w for w in writes if "INSERT" in w.upper() or "UPDATE" in w.upper()] == []
