"""RFC 8414 metadata and the JWK Set."""

from __future__ import annotations

from tests.conftest import BASE_URL


def test_authorization_server_metadata(client):
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert body["issuer"] == BASE_URL
    assert body["token_endpoint"] == f"{BASE_URL}/oauth/token"
    assert body["jwks_uri"] == f"{BASE_URL}/oauth/jwks"
    assert body["introspection_endpoint"] == f"{BASE_URL}/oauth/introspect"
    assert body["revocation_endpoint"] == f"{BASE_URL}/oauth/revoke"
    assert body["grant_types_supported"] == ["authorization_code", "client_credentials", "refresh_token"]
    assert body["authorization_endpoint"] == f"{BASE_URL}/oauth/authorize"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["authorization_response_iss_parameter_supported"] is True
    methods = {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
    assert set(body["token_endpoint_auth_methods_supported"]) == methods
    assert {"RS384", "ES384", "RS256", "ES256", "EdDSA"} <= set(
        body["token_endpoint_auth_signing_alg_values_supported"]
    )


def test_jwks_publishes_only_public_keys(client):
    keys = client.get("/oauth/jwks").get_json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and key["use"] == "sig"
    assert "d" not in key and key["kid"]


def test_html_and_json_responses_carry_security_headers(client):
    response = client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in response.headers
    secure = client.get("/", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
