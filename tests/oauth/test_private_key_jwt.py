"""private_key_jwt client authentication (RFC 7523, SMART Backend Services), inline JWK Sets.

Keys are generated in each test and assertions are signed with joserfc; every refusal must
be 401 ``invalid_client`` naming the failed check without repeating the assertion.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from oauth.replay import first_use
from tests.conftest import BASE_URL, basic_auth
from tests.oauth.signing import TOKEN_URL, ClientKey, assertion_form


@pytest.fixture
def developer(make):
    return make.as_role("developer")


@pytest.fixture
def key():
    return ClientKey("ES384")


@pytest.fixture
def app_with_key(make, sandbox, developer, key):
    return make.application(developer, jwks=key.jwks())


def post_assertion(client, assertion: str, **extra):
    return client.post("/oauth/token", data=assertion_form(assertion, **extra))


def assert_refused(response, check: str, assertion: str | None = None):
    assert response.status_code == 401, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "invalid_client"
    assert check in body["error_description"], body["error_description"]
    assert response.headers["Cache-Control"] == "no-store"
    if assertion is not None:
        for part in assertion.split("."):
            assert part not in response.get_data(as_text=True)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def small_rsa_jwk() -> dict:
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    as_b64 = lambda value: b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))  # noqa: E731
    return {"kty": "RSA", "n": as_b64(numbers.n), "e": as_b64(numbers.e)}


def unsigned(header: dict, claims: dict) -> str:
    return f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}"


# -- acceptance -------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS384", "ES384", "RS256", "ES256", "EdDSA", "PS384"])
def test_each_algorithm_obtains_a_backend_services_token(client, make, sandbox, developer, alg):
    signer = ClientKey(alg)
    app = make.application(developer, jwks=signer.jwks())
    assert app.secret is None and app.body["auth_method"] == "private_key_jwt"
    response = post_assertion(client, signer.assertion(app.key), scope="system/Patient.rs")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 300
    assert body["scope"] == "system/Patient.rs" and body["access_token"]
    assert response.headers["Cache-Control"] == "no-store"
    patient = client.get("/fhir/sandbox/Patient", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert patient.status_code == 200


def test_client_id_parameter_may_accompany_the_assertion(client, app_with_key, key):
    response = post_assertion(client, key.assertion(app_with_key.key), client_id=app_with_key.key)
    assert response.status_code == 200


def test_the_issuer_is_accepted_as_audience_and_aud_may_be_a_one_element_list(client, app_with_key, key):
    assert post_assertion(client, key.assertion(app_with_key.key, aud=BASE_URL)).status_code == 200
    assert post_assertion(client, key.assertion(app_with_key.key, aud=[TOKEN_URL])).status_code == 200


def test_an_audience_list_naming_others_too_is_refused(client, app_with_key, key):
    # Such an assertion would be accepted by the other audience as well (RFC 7523bis).
    listed = key.assertion(app_with_key.key, aud=["https://elsewhere.example", TOKEN_URL])
    assert_refused(post_assertion(client, listed), "aud must be the token endpoint URL")


def test_an_assertion_without_kid_uses_the_only_key(client, app_with_key, key):
    response = post_assertion(client, key.assertion(app_with_key.key, header={"kid": None}))
    assert response.status_code == 200


def test_tokens_live_at_most_five_minutes_even_if_the_operator_allows_longer(
    app, client, app_with_key, key, monkeypatch
):
    monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_TTL", 3600)
    response = post_assertion(client, key.assertion(app_with_key.key))
    assert response.get_json()["expires_in"] == 300


def test_a_hospital_api_key_may_register_public_keys_instead_of_a_secret(client, make):
    hospital = make.hospital("general")
    signer = ClientKey("RS384")
    api_key = make.api_key(hospital, jwks=signer.jwks())
    assert api_key.secret is None and api_key.body["token"]
    response = post_assertion(client, signer.assertion(api_key.key))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["scope"] == "system/Patient.rs"


def test_introspection_accepts_private_key_jwt(client, app_with_key, key):
    token = post_assertion(client, key.assertion(app_with_key.key)).get_json()["access_token"]
    response = client.post(
        "/oauth/introspect", data={"token": token, **assertion_form(key.assertion(app_with_key.key))}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["active"] is True


# -- refusals ---------------------------------------------------------------------------


class FromNow(int):
    """A claim value in seconds from the moment the assertion is signed (not collected)."""


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"aud": "https://other.example/oauth/token"}, "aud must be the token endpoint URL"),
        ({"aud": None}, "aud must be the token endpoint URL"),
        ({"exp": FromNow(-60)}, "expired"),
        ({"exp": FromNow(600)}, "more than 5 minutes in the future"),
        ({"exp": None}, "no exp"),
        ({"exp": "soon"}, "not a NumericDate"),
        ({"jti": None}, "no jti"),
        ({"jti": ""}, "no jti"),
        ({"nbf": FromNow(120)}, "not valid yet"),
        ({"iat": FromNow(120)}, "iat is in the future"),
    ],
)
def test_claims_are_checked(client, app_with_key, key, changes, check):
    now = int(time.time())
    changes = {name: now + value if isinstance(value, FromNow) else value for name, value in changes.items()}
    assertion = key.assertion(app_with_key.key, **changes)
    assert_refused(post_assertion(client, assertion), check, assertion)


def test_a_replayed_jti_is_refused(client, app_with_key, key):
    assertion = key.assertion(app_with_key.key)
    assert post_assertion(client, assertion).status_code == 200
    assert_refused(post_assertion(client, assertion), "jti was already used", assertion)
    # A freshly signed assertion reusing a jti is a replay too, until the first one expires.
    jti = uuid.uuid4().hex
    assert post_assertion(client, key.assertion(app_with_key.key, jti=jti)).status_code == 200
    assert_refused(post_assertion(client, key.assertion(app_with_key.key, jti=jti)), "jti was already used")


def test_jtis_are_per_client(client, make, sandbox, developer):
    first, second = ClientKey(), ClientKey()
    app_one = make.application(developer, jwks=first.jwks())
    app_two = make.application(developer, jwks=second.jwks())
    shared = uuid.uuid4().hex
    assert post_assertion(client, first.assertion(app_one.key, jti=shared)).status_code == 200
    assert post_assertion(client, second.assertion(app_two.key, jti=shared)).status_code == 200


@pytest.mark.parametrize("subject", ["app_\u0000x", "app with spaces", "x" * 65, 42])
def test_an_unusable_client_id_in_the_assertion_is_refused(client, key, subject):
    assertion = key.assertion("app_x", iss=subject, sub=subject)
    assert_refused(post_assertion(client, assertion), "iss and sub must both be the client id")


@pytest.mark.parametrize("typ", ["at+jwt", "JWS", 7])
def test_a_jwt_of_another_type_is_refused(client, app_with_key, key, typ):
    assertion = (
        key.assertion(app_with_key.key, header={"typ": typ})
        if typ != 7
        else key.sign_raw(
            {"alg": "ES384", "kid": key.kid, "typ": 7}, orjson.dumps(key.claims(app_with_key.key))
        )
    )
    assert_refused(post_assertion(client, assertion), "typ header")


def test_the_client_authentication_typ_of_rfc7523bis_is_accepted(client, app_with_key, key):
    assertion = key.assertion(app_with_key.key, header={"typ": "client-authentication+jwt"})
    assert post_assertion(client, assertion).status_code == 200


def test_iss_must_equal_sub(client, app_with_key, key):
    assertion = key.assertion(app_with_key.key, iss="app_someone_else")
    assert_refused(post_assertion(client, assertion), "iss and sub must both be the client id", assertion)


def test_client_id_parameter_must_match_sub(client, app_with_key, key):
    response = post_assertion(client, key.assertion(app_with_key.key), client_id="app_other")
    assert_refused(response, "differs from the assertion's sub")


def test_unknown_kid_is_refused(client, app_with_key, key):
    assertion = key.assertion(app_with_key.key, header={"kid": "not-registered"})
    assert_refused(post_assertion(client, assertion), "no key of the client's JWK Set fits", assertion)


def test_a_signature_by_another_key_is_refused(client, app_with_key, key):
    impostor = ClientKey("ES384", kid=key.kid)
    assertion = impostor.assertion(app_with_key.key)
    assert_refused(post_assertion(client, assertion), "signature does not verify", assertion)


def test_alg_none_is_refused(client, app_with_key, key):
    assertion = unsigned({"alg": "none", "kid": key.kid}, key.claims(app_with_key.key)) + "."
    assert_refused(post_assertion(client, assertion), "not a JWT in compact serialization")
    with_signature = unsigned({"alg": "none", "kid": key.kid}, key.claims(app_with_key.key)) + ".c2ln"
    assert_refused(post_assertion(client, with_signature), "alg must be one of")


def test_hs256_signed_with_the_public_key_as_hmac_secret_is_refused(client, make, sandbox, developer):
    signer = ClientKey("RS256")
    app = make.application(developer, jwks=signer.jwks())
    public_pem = signer.key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (public_pem, json.dumps(signer.public_jwk).encode()):
        signing_input = unsigned({"alg": "HS256", "kid": signer.kid}, signer.claims(app.key))
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assertion = f"{signing_input}.{b64(mac)}"
        assert_refused(post_assertion(client, assertion), "alg must be one of", assertion)


def test_a_tampered_payload_is_refused(client, app_with_key, key):
    header, _, signature = key.assertion(app_with_key.key).split(".")
    forged = b64(orjson.dumps(key.claims(app_with_key.key, scope="system/*.cruds")))
    assertion = f"{header}.{forged}.{signature}"
    assert_refused(post_assertion(client, assertion), "signature does not verify", assertion)


@pytest.mark.parametrize(
    "assertion",
    ["not-a-jwt", "a.b", "a.b.c.d", "....", "eyJhbGciOiJFUzM4NCJ9.!!!.abc", "e30.e30.", "W10.e30.c2ln"],
)
def test_malformed_assertions_are_refused(client, app_with_key, assertion):
    response = post_assertion(client, assertion)
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_a_crit_header_is_refused(client, app_with_key, key):
    assertion = key.sign_raw(
        {"alg": "ES384", "kid": key.kid, "crit": ["exp"]}, orjson.dumps(key.claims(app_with_key.key))
    )
    assert_refused(post_assertion(client, assertion), "crit header")


def test_an_oversized_assertion_is_refused(client, app_with_key, key):
    assertion = key.assertion(app_with_key.key, padding="x" * 20_000)
    assert_refused(post_assertion(client, assertion), "longer than")


def test_a_wrong_client_assertion_type_is_refused(client, app_with_key, key):
    form = assertion_form(key.assertion(app_with_key.key))
    form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    response = client.post("/oauth/token", data=form)
    assert_refused(response, "client_assertion_type must be")


def test_an_assertion_without_its_type_is_invalid_request(client, app_with_key, key):
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_assertion": key.assertion(app_with_key.key)},
    )
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_a_key_client_cannot_fall_back_to_a_secret(client, app_with_key):
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_auth(app_with_key.key, "apps_" + "x" * 43),
    )
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_an_unknown_client_is_refused(client, key):
    assertion = key.assertion("app_nobody")
    assert_refused(post_assertion(client, assertion), "no active client registered for private_key_jwt")


def test_a_secret_client_cannot_use_an_assertion(client, make, sandbox, key):
    secret_app = make.application()
    assert_refused(post_assertion(client, key.assertion(secret_app.key)), "no active client registered")


def test_unsupported_grant_type_is_400(client, app_with_key, key):
    response = client.post(
        "/oauth/token", data=assertion_form(key.assertion(app_with_key.key), grant_type="not_a_grant_type")
    )
    assert response.status_code == 400 and response.get_json()["error"] == "unsupported_grant_type"


# -- the developer's side ----------------------------------------------------------------


def test_the_last_refusal_reason_is_shown_to_the_developer(client, developer, app_with_key, key):
    before = developer.get(f"/api/apps/{app_with_key.key}").get_json()
    assert before["last_assertion_failure"] is None
    post_assertion(client, key.assertion(app_with_key.key, aud="https://wrong.example/token"))
    failure = developer.get(f"/api/apps/{app_with_key.key}").get_json()["last_assertion_failure"]
    assert "aud must be the token endpoint URL" in failure["reason"] and failure["at"]


def test_replacing_the_keys_retires_the_old_ones_and_their_tokens(client, developer, app_with_key, key):
    token = post_assertion(client, key.assertion(app_with_key.key)).get_json()["access_token"]
    new_key = ClientKey("RS384")
    response = developer.put(f"/api/apps/{app_with_key.key}/keys", json={"jwks": new_key.jwks()})
    assert response.status_code == 200 and response.get_json()["jwks"] == new_key.jwks()
    assert_refused(post_assertion(client, key.assertion(app_with_key.key)), "no key of the client's JWK Set")
    assert post_assertion(client, new_key.assertion(app_with_key.key)).status_code == 200
    old = client.get("/fhir/sandbox/Patient", headers={"Authorization": f"Bearer {token}"})
    assert old.status_code == 401


def test_a_secret_application_can_switch_to_keys_and_back(client, make, sandbox, developer):
    app = make.application(developer)
    signer = ClientKey()
    assert developer.put(f"/api/apps/{app.key}/keys", json={"jwks": signer.jwks()}).status_code == 200
    secret_form = {"grant_type": "client_credentials"}
    assert (
        client.post("/oauth/token", data=secret_form, headers=basic_auth(app.key, app.secret)).status_code
        == 401
    )
    assert post_assertion(client, signer.assertion(app.key)).status_code == 200
    rotated = developer.post(f"/api/apps/{app.key}/secret").get_json()
    assert rotated["auth_method"] == "client_secret"
    assert (
        client.post(
            "/oauth/token", data=secret_form, headers=basic_auth(app.key, rotated["client_secret"])
        ).status_code
        == 200
    )
    assert_refused(post_assertion(client, signer.assertion(app.key)), "no active client registered")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"jwks": {"keys": []}}, "no keys"),
        ({"jwks": {"kty": "EC"}}, "'keys' array"),
        ({"jwks": "not json"}, "not JSON"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "private or symmetric"),
        ({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}}, "not a valid public key"),
        ({"jwks": {"keys": [small_rsa_jwk()]}}, "at least 2048 and at most 8192 bits"),
        ({"jwks_uri": "ftp://keys.example/jwks"}, "must use https"),
        ({"jwks_uri": 42}, "must be a URL"),
        ({"jwks": {"keys": []}, "jwks_uri": "https://keys.example/jwks"}, "not both"),
        ({"client_secret": "s" * 40, "jwks_uri": "https://keys.example/jwks"}, "not both"),
    ],
)
def test_unusable_keys_are_refused_at_registration(developer, sandbox, body, message):
    response = developer.post("/api/apps", json={"name": "Bad keys", **body})
    assert response.status_code == 400
    assert message in response.get_json()["message"], response.get_json()


def test_private_key_material_is_refused_at_registration(developer, sandbox):
    signer = ClientKey("ES256")
    private = signer.key.as_dict(private=True)
    response = developer.post("/api/apps", json={"name": "Leaky", "jwks": {"keys": [private]}})
    assert response.status_code == 400 and "register public keys only" in response.get_json()["message"]


def test_key_headers_need_a_secret(make):
    hospital = make.hospital("general")
    admin = make.as_role("hospital-admin", hospital)
    response = admin.post(
        f"/api/hospitals/{hospital}/api-keys",
        json={
            "name": "CRM",
            "permissions": ["system/Patient.rs"],
            "jwks": ClientKey().jwks(),
            "require_key_headers": True,
        },
    )
    assert response.status_code == 400


# -- discovery ---------------------------------------------------------------------------


def test_smart_configuration_tells_what_is_supported(client, sandbox):
    response = client.get("/fhir/sandbox/.well-known/smart-configuration", headers={"Accept": "*/*"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert body["token_endpoint"] == TOKEN_URL
    assert body["grant_types_supported"] == ["authorization_code", "client_credentials", "refresh_token"]
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
    assert {"RS384", "ES384"} <= set(body["token_endpoint_auth_signing_alg_values_supported"])
    assert "none" not in body["token_endpoint_auth_signing_alg_values_supported"]
    assert "HS256" not in body["token_endpoint_auth_signing_alg_values_supported"]
    assert "system/*.rs" in body["scopes_supported"]
    capabilities = set(body["capabilities"])
    assert {"client-confidential-asymmetric", "client-confidential-symmetric"} <= capabilities
    assert {"permission-v1", "permission-v2"} <= capabilities
    assert "context-ehr-encounter" not in capabilities  # not built: not declared
    assert body["authorization_endpoint"] == f"{BASE_URL}/oauth/authorize"


def test_smart_configuration_of_an_unknown_hospital_is_404(client):
    response = client.get("/fhir/nowhere/.well-known/smart-configuration")
    assert response.status_code == 404


def test_capability_statement_names_the_smart_token_endpoint(client, sandbox):
    security = client.get("/fhir/sandbox/metadata").get_json()["rest"][0]["security"]
    uris = {item["url"]: item["valueUri"] for item in security["extension"][0]["extension"]}
    assert uris["token"] == TOKEN_URL
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"


def test_a_jti_may_be_used_again_once_its_first_use_expired(ctx):
    past, future = datetime.now(UTC) - timedelta(seconds=1), datetime.now(UTC) + timedelta(minutes=5)
    assert first_use("app_a", "jti-1", past) is True
    assert first_use("app_a", "jti-1", future) is True  # the earlier use has expired
    assert first_use("app_a", "jti-1", future) is False
    assert first_use("app_b", "jti-1", future) is True


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "Odd", "jwks": {"keys": [{"kty": "EC", "kid": "\\ud800"}]}}',
        b'{"name": "Odd", "jwks": {"keys": [{"kty": "RSA", "e": 123456789012345678901234567890}]}}',
    ],
)
def test_jwks_values_json_cannot_store_are_a_400(developer, sandbox, raw):
    response = developer.post("/api/apps", data=raw, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)


def test_refusals_are_recorded_at_most_every_ten_seconds(client, developer, app_with_key, key):
    post_assertion(client, key.assertion(app_with_key.key, aud="https://wrong.example/token"))
    post_assertion(client, key.assertion(app_with_key.key, exp=int(time.time()) - 60))
    failure = developer.get(f"/api/apps/{app_with_key.key}").get_json()["last_assertion_failure"]
    assert "aud must be" in failure["reason"]


def test_the_rate_limit_key_of_an_assertion_is_its_subject(app, key):
    from oauth.endpoint_request import claimed_client_id

    form = assertion_form(key.assertion("app_limited"))
    with app.test_request_context("/oauth/token", method="POST", data=form):
        from flask import request

        assert claimed_client_id(request) == "app_limited"


def test_a_jwks_may_be_sent_as_json_text(client, developer, sandbox):
    signer = ClientKey("ES256")
    created = developer.post("/api/apps", json={"name": "Text keys", "jwks": json.dumps(signer.jwks())})
    assert created.status_code == 201 and created.get_json()["jwks"] == signer.jwks()
    assert post_assertion(client, signer.assertion(created.get_json()["client_id"])).status_code == 200


def test_an_oversized_jwks_is_refused(developer, sandbox):
    jwks = ClientKey().jwks()
    jwks["keys"][0]["x5c"] = ["A" * 70_000]
    response = developer.post("/api/apps", json={"name": "Huge", "jwks": jwks})
    assert response.status_code == 400 and "larger than 64 KiB" in response.get_json()["message"]


# P-256 and P-384 group orders (SEC 2 §2.4.2, §2.5.1).
_ORDERS = {
    "ES256": (0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551, 32),
    "ES384": (
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
        48,
    ),
}


@pytest.mark.parametrize("alg", ["ES256", "ES384"])
def test_a_high_s_client_assertion_is_accepted_once_whatever_its_spelling(
    client, make, sandbox, developer, alg
):
    """Clients' JOSE libraries (joserfc, Authlib, cryptography) emit a high S about half the time,
    so both spellings of an ECDSA signature are accepted; the jti makes either of them single-use."""
    signer = ClientKey(alg)
    app = make.application(developer, jwks=signer.jwks())
    order, size = _ORDERS[alg]
    assertion = signer.assertion(app.key)
    head, payload, signature = assertion.split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    r, s = int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
    other = f"{head}.{payload}.{b64(r.to_bytes(size, 'big') + (order - s).to_bytes(size, 'big'))}"
    high, low = (assertion, other) if s > order // 2 else (other, assertion)
    assert post_assertion(client, high).status_code == 200
    assert_refused(post_assertion(client, low), "jti")


def test_a_jku_header_is_refused_when_the_client_registered_its_keys_inline(client, app_with_key, key):
    """SMART Backend Services: a jku SHALL match the registered JWK Set URL; this client has none."""
    assertion = key.assertion(app_with_key.key, header={"jku": "https://attacker.example/jwks.json"})
    assert_refused(post_assertion(client, assertion), "jku", assertion)
