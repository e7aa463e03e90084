"""An application's registered signing algorithms: RS256 access tokens (RFC 9068 §2.1 requires
every resource server to support it) and ES256 ID tokens; the defaults stay ES256 access tokens
and RS256 ID tokens. Tokens are checked with joserfc against the published JWK Set, and a key of
one kind never verifies another algorithm."""

from __future__ import annotations

import base64

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import basic_auth
from tests.oauth.smart_launch import Launch, smart_app


@pytest.fixture
def patient(make):
    make.hospital("general", "General Hospital")
    make.patient("general", "p1", "Doe")
    return make.as_role("patient", "general", "p1")


def header(token: str) -> dict:
    return orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def verified(client, token: str, alg: str) -> dict:
    keys = KeySet.import_key_set(client.get("/oauth/jwks").get_json())
    return jwt.decode(token, keys, algorithms=[alg]).claims


def test_registration_takes_the_two_algorithms_and_nothing_else(make):
    developer = make.as_role("developer")
    body = {"name": "X", "redirect_uris": ["https://app.example/callback"]}
    created = developer.post(
        "/api/apps",
        json={**body, "id_token_signed_response_alg": "ES256", "access_token_signed_response_alg": "RS256"},
    )
    assert created.status_code == 201
    shown = created.get_json()
    assert (shown["id_token_signed_response_alg"], shown["access_token_signed_response_alg"]) == (
        "ES256",
        "RS256",
    )
    default = developer.post("/api/apps", json=body).get_json()
    assert (default["id_token_signed_response_alg"], default["access_token_signed_response_alg"]) == (
        "RS256",
        "ES256",
    )
    for alg in ("HS256", "none", "RS384", 256):
        refused = developer.post("/api/apps", json={**body, "access_token_signed_response_alg": alg})
        assert refused.status_code == 400


def test_rs256_access_tokens_work_everywhere_es256_ones_do(make, client, patient):
    registered = smart_app(
        make, access_token_signed_response_alg="RS256", id_token_signed_response_alg="ES256"
    )
    launch = Launch(
        registered.key, registered.secret, scope="launch/patient openid offline_access patient/*.rs"
    )
    body = launch.exchange(client, launch.code(patient)).get_json()
    assert header(body["access_token"])["alg"] == "RS256" and header(body["access_token"])["typ"] == "at+jwt"
    assert verified(client, body["access_token"], "RS256")["patient"] == "p1"
    assert header(body["id_token"])["alg"] == "ES256"
    assert verified(client, body["id_token"], "ES256")["aud"] == registered.key
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/fhir/general/Patient/p1", headers=bearer).status_code == 200
    refreshed = launch.refresh(client, body["refresh_token"]).get_json()
    assert header(refreshed["access_token"])["alg"] == "RS256"
    auth = basic_auth(registered.key, registered.secret)
    assert client.post(
        "/oauth/introspect", data={"token": refreshed["access_token"]}, headers=auth
    ).get_json()["active"]
    # the client-credentials grant of the same application signs RS256 too
    make.as_role("hospital-admin", "general").put(
        f"/api/hospitals/general/apps/{registered.key}", json={"permissions": ["system/Patient.rs"]}
    )
    backend = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=auth).get_json()
    assert header(backend["access_token"])["alg"] == "RS256"
    assert (
        client.get(
            "/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {backend['access_token']}"}
        ).status_code
        == 200
    )


def test_no_key_serves_another_algorithm_and_an_id_token_is_no_access_token(make, client, patient):
    registered = smart_app(make)
    launch = Launch(registered.key, registered.secret, scope="launch/patient openid patient/*.rs")
    body = launch.exchange(client, launch.code(patient)).get_json()
    assert header(body["id_token"])["alg"] == "RS256"
    assert (
        client.get(
            "/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {body['id_token']}"}
        ).status_code
        == 401
    )
    access = body["access_token"]
    parts = access.split(".")
    rsa_kid = header(body["id_token"])["kid"]
    for alg, kid in (("RS256", header(access)["kid"]), ("ES256", rsa_kid)):
        forged_header = base64.urlsafe_b64encode(
            orjson.dumps({"alg": alg, "typ": "at+jwt", "kid": kid})
        ).rstrip(b"=")
        forged = ".".join([forged_header.decode(), parts[1], parts[2]])
        assert (
            client.get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {forged}"}).status_code
            == 401
        )
