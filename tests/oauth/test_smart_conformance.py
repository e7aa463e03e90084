"""The checks the public SMART App Launch suites make (../shared/CONFORMANCE.md §1 discovery,
§2 standalone launch, §3 EHR launch, §4 OpenID Connect, §5 refresh, §6 invalid requests, §7
revocation and introspection), as they make them: over HTTP against a running server."""

from __future__ import annotations

import base64
import time
import uuid

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from app.extensions import db
from fhir.storage.sql import SqlRepository
from tests.conftest import BASE_URL, PASSWORD, basic_auth
from tests.oauth.signing import ASSERTION_TYPE, ClientKey
from tests.oauth.smart_launch import AUD, CSRF, Launch, LiveClient, pkce_pair, query_of, smart_app
from tests.servers import threaded_server


@pytest.fixture(scope="module")
def live(app):
    with threaded_server(app) as url:
        yield url


@pytest.fixture
def client(live):
    """Every request of this module goes over a socket to the running server."""
    return LiveClient(live)


@pytest.fixture
def general(make):
    make.hospital("general", "General Hospital")
    make.patient("general", "p1", "Doe")
    return "general"


@pytest.fixture
def patient(make, general, live):
    browser = LiveClient(live)
    email = make.user("patient", general, "p1")
    assert browser.post("/api/session", json={"email": email, "password": PASSWORD}).status_code == 200
    return browser


def test_discovery_as_the_suites_read_it(client, general):
    """§1: the well-known file, and the CapabilityStatement's oauth-uris."""
    response = client.get(
        "/fhir/general/.well-known/smart-configuration", headers={"Accept": "application/json"}
    )
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    body = response.get_json()
    assert body["authorization_endpoint"] == f"{BASE_URL}/oauth/authorize"
    assert body["token_endpoint"] == f"{BASE_URL}/oauth/token"
    assert "authorization_code" in body["grant_types_supported"]
    assert "refresh_token" in body["grant_types_supported"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["management_endpoint"] == f"{BASE_URL}/portal/apps"
    assert body["introspection_endpoint"] and body["revocation_endpoint"]
    assert body["issuer"] == BASE_URL and body["jwks_uri"] == f"{BASE_URL}/oauth/jwks"
    capabilities = set(body["capabilities"])
    standalone = {"launch-standalone", "client-public", "context-standalone-patient", "permission-patient"}
    both = {
        "sso-openid-connect",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "permission-offline",
        "authorize-post",
        "permission-v1",
        "permission-v2",
    }
    ehr = {"launch-ehr", "context-ehr-patient", "permission-user", "context-banner", "context-style"}
    assert standalone | both | ehr <= capabilities
    # not built, so not declared: no encounter context, no embedding
    unbuilt = {"context-ehr-encounter", "context-standalone-encounter", "context-passthrough-banner"}
    assert not unbuilt & capabilities
    uris = client.get("/fhir/general/metadata").get_json()["rest"][0]["security"]["extension"][0]["extension"]
    named = {item["url"]: item["valueUri"] for item in uris}
    assert named["authorize"] == body["authorization_endpoint"] and named["token"] == body["token_endpoint"]
    assert named["manage"] == body["management_endpoint"]


def test_asymmetric_client_launches_and_refreshes_with_assertions(make, client, patient):
    """§2 and §5 for client-confidential-asymmetric: RS384 assertions at the exchange and refresh."""
    key = ClientKey("RS384")
    registered = smart_app(make, jwks=key.jwks())
    launch = Launch(registered.key, None)
    code = launch.code(patient)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": launch.redirect_uri,
        "code_verifier": launch.verifier,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": key.assertion(registered.key),
    }
    response = client.post("/oauth/token", data=form)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["patient"] == "p1" and body["expires_in"] <= 300  # assertion clients: 5 minutes
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": body["refresh_token"],
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": key.assertion(registered.key),
    }
    refreshed = client.post("/oauth/token", data=refresh)
    assert refreshed.status_code == 200, refreshed.get_json()
    assert (
        client.get(
            "/fhir/general/Patient/p1",
            headers={"Authorization": "Bearer " + refreshed.get_json()["access_token"]},
        ).status_code
        == 200
    )


def test_refresh_as_the_suites_send_it(make, client, patient):
    """§5: without scope, then with exactly the returned scope; the result a subset, with types."""
    registered = smart_app(make)
    launch = Launch(registered.key, registered.secret)
    body = launch.exchange(client, launch.code(patient)).get_json()
    first = launch.refresh(client, body["refresh_token"])
    again = launch.refresh(client, first.get_json()["refresh_token"], scope=first.get_json()["scope"])
    for response in (first, again):
        assert response.status_code == 200
        token = response.get_json()
        assert token["token_type"].lower() == "bearer" and isinstance(token["expires_in"], int)
        assert token["scope"] and set(token["scope"].split()) <= set(body["scope"].split())
        assert "no-store" in response.headers["Cache-Control"] and "no-cache" in response.headers["Pragma"]
    random = launch.refresh(client, str(uuid.uuid4()))
    assert random.status_code in (400, 401)


def test_g10_negative_token_requests(make, client, patient):
    """§6: an invalid code is exactly 400; a bad client id 400 or 401; a bad grant type exactly 400."""
    registered = smart_app(make)
    launch = Launch(registered.key, registered.secret)
    code = launch.code(patient)
    assert launch.exchange(client, "BAD_CODE").status_code == 400
    bad_client = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": launch.redirect_uri,
            "code_verifier": launch.verifier,
        },
        headers=basic_auth("BAD_CLIENT_ID", registered.secret),
    )
    assert bad_client.status_code in (400, 401)
    bad_grant = client.post(
        "/oauth/token",
        data={"grant_type": "not_a_grant_type"},
        headers=basic_auth(registered.key, registered.secret),
    )
    assert bad_grant.status_code == 400
    assert client.get("/fhir/general/Patient/p1").status_code == 401


def test_invalid_aud_gives_no_code(make, patient):
    """§6 "Invalid AUD": no code arrives (here: an error page, no redirect at all)."""
    registered = smart_app(make)
    response = patient.get(
        Launch(
            registered.key, registered.secret, aud="https://inferno.healthit.gov/invalid_aud"
        ).authorize_url()
    )
    assert response.status_code == 400 and "Location" not in response.headers


def test_introspection_as_the_suites_send_it(make, client, patient, general):
    """§7: an active token described as the token response described it; an invalid one only
    ``active: false``."""
    registered = smart_app(make)
    launch = Launch(registered.key, registered.secret)
    body = launch.exchange(client, launch.code(patient)).get_json()
    auth = basic_auth(registered.key, registered.secret)
    seen = client.post(
        "/oauth/introspect",
        data={"token": body["access_token"]},
        headers={**auth, "Accept": "application/json"},
    )
    assert seen.status_code == 200
    described = seen.get_json()
    assert described["active"] is True and described["client_id"] == registered.key
    assert set(described["scope"].split()) == set(body["scope"].split())
    assert described["patient"] == body["patient"] and described["exp"]
    invalid = client.post("/oauth/introspect", data={"token": "invalid_token_value"}, headers=auth)
    assert invalid.status_code == 200 and invalid.get_json() == {"active": False}


def test_revoked_tokens_as_the_suites_try_them(make, client, patient):
    """§7 Token Revocation: after the patient revokes, a read is 401/403/404 and a refresh 400/401."""
    registered = smart_app(make)
    launch = Launch(registered.key, registered.secret)
    body = launch.exchange(client, launch.code(patient)).get_json()
    from tests.oauth.smart_launch import CSRF

    page = patient.get("/portal/apps").get_data(as_text=True)
    approval_id = page.split("/portal/apps/")[1].split('"')[0].split("/")[0]
    patient.post(f"/portal/apps/{approval_id}/revoke", data={"csrf_token": CSRF.search(page).group(1)})
    read = client.get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert read.status_code in (401, 403, 404)
    assert launch.refresh(client, body["refresh_token"]).status_code in (400, 401)


def test_openid_connect_as_the_suites_check_it(make, client, patient):
    """§4: the ID token decodes, its issuer's openid-configuration and JWKS are as required, the
    header is RS256 with a matching kid, the signature and claims hold, and fhirUser reads."""
    registered = smart_app(make)
    launch = Launch(
        registered.key,
        registered.secret,
        scope="launch/patient openid fhirUser offline_access patient/*.rs",
        extra={"nonce": "n-0S6_WzA2Mj"},
    )
    body = launch.exchange(client, launch.code(patient)).get_json()
    assert {"openid", "fhirUser", "launch/patient", "offline_access"} <= set(body["scope"].split())
    id_token = body["id_token"]
    header = orjson.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    assert header["alg"] == "RS256"

    issuer = orjson.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "==="))["iss"]
    config = client.get(issuer.removeprefix(BASE_URL) + "/.well-known/openid-configuration")
    assert config.status_code == 200 and config.mimetype == "application/json"
    settings = config.get_json()
    for name in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ):
        assert settings[name], name
    assert "RS256" in settings["id_token_signing_alg_values_supported"]
    jwks = client.get(settings["jwks_uri"].removeprefix(BASE_URL)).get_json()
    rsa_keys = [key for key in jwks["keys"] if key["kty"] == "RSA"]
    assert rsa_keys and all(RSAKey.import_key(key) for key in rsa_keys)
    assert header["kid"] in {key["kid"] for key in rsa_keys}

    verified = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    claims = verified.claims
    assert claims["exp"] > time.time() - 60 and claims["iat"] <= time.time() + 5
    assert claims["iss"] == settings["issuer"] == BASE_URL
    assert claims["aud"] == registered.key or registered.key in claims["aud"]
    assert claims["sub"] and len(claims["sub"]) < 256 and claims["nonce"] == "n-0S6_WzA2Mj"
    resource_type, resource_id = claims["fhirUser"].split("/")[-2:]
    assert resource_type == "Patient" and claims["fhirUser"] == f"{AUD}/Patient/p1"
    read = client.get(
        f"/fhir/general/{resource_type}/{resource_id}",
        headers={"Authorization": "Bearer " + body["access_token"]},
    )
    assert read.status_code == 200 and read.get_json()["resourceType"] == "Patient"

    # introspection repeats the ID token's iss and sub
    auth = basic_auth(registered.key, registered.secret)
    described = client.post(
        "/oauth/introspect", data={"token": body["access_token"]}, headers=auth
    ).get_json()
    assert (described["iss"], described["sub"]) == (claims["iss"], claims["sub"])
    assert described["fhirUser"] == claims["fhirUser"]
    # and UserInfo says the same
    info = client.get("/oauth/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.status_code == 200 and info.get_json() == {
        "sub": claims["sub"],
        "fhirUser": claims["fhirUser"],
    }
    # the refresh grant gives no new ID token, and the refreshed access token still reads
    refreshed = launch.refresh(client, body["refresh_token"]).get_json()
    assert "id_token" not in refreshed


def test_userinfo_refuses_what_it_should(make, client, patient, general):
    registered = smart_app(make)
    launch = Launch(registered.key, registered.secret, scope="launch/patient patient/Patient.rs")
    body = launch.exchange(client, launch.code(patient)).get_json()
    no_openid = client.get("/oauth/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert no_openid.status_code == 403 and no_openid.get_json()["error"] == "insufficient_scope"
    assert "WWW-Authenticate" in no_openid.headers
    assert client.get("/oauth/userinfo").status_code == 401
    key = make.api_key(general)
    backend = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic_auth(key.key, key.secret)
    )
    backend_token = backend.get_json()["access_token"]
    assert (
        client.get("/oauth/userinfo", headers={"Authorization": "Bearer " + backend_token}).status_code == 401
    )


def launch_from_ehr(live, make, registered) -> dict:
    """A clinician opens p1 on the EHR page and launches the app; where the browser is sent."""
    admin = make.as_role("hospital-admin", "general")
    admin.put(f"/api/hospitals/general/apps/{registered.key}", json={"permissions": ["system/Patient.rs"]})
    with make.app.app_context():
        practitioner = {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Who"}]}
        SqlRepository(db.session, "general").update("Practitioner", "dr1", practitioner)
        db.session.commit()
    account = {"email": "dr@example.org", "password": "x" * 12, "practitioner": "dr1"}
    assert admin.post("/api/hospitals/general/clinicians", json=account).status_code == 201
    clinician = LiveClient(live)
    assert (
        clinician.post("/api/session", json={"email": "dr@example.org", "password": "x" * 12}).status_code
        == 200
    )
    page = clinician.get("/ehr").get_data(as_text=True)
    form = {"csrf_token": CSRF.search(page).group(1), "patient": "p1", "app": registered.key}
    sent = clinician.post("/ehr/launch", data=form)
    assert sent.status_code == 303
    return {"clinician": clinician, **query_of(sent.headers["Location"])}


@pytest.mark.parametrize(
    ("scope", "reads_other_patients"),
    [
        ("launch openid fhirUser offline_access user/*.rs", True),
        ("launch openid offline_access patient/Patient.rs", False),
    ],
    ids=["practitioner-user-scopes", "ehr-patient-scopes"],
)
def test_ehr_launch_as_the_suites_check_it(make, client, general, live, scope, reads_other_patients):
    """§3: iss exactly the FHIR URL, a launch; the token response's patient (readable, 401 without
    the token), need_patient_banner and a smart_style_url that answers JSON; the scopes as asked."""
    make.patient("general", "p2", "Roe")
    registered = smart_app(make, launch_uri="https://app.example/launch")
    launched = launch_from_ehr(live, make, registered)
    assert launched["iss"] == AUD and launched["launch"]
    launch = Launch(
        registered.key,
        registered.secret,
        scope=scope,
        aud=launched["iss"],
        extra={"launch": launched["launch"]},
    )
    response = launch.exchange(client, launch.code(launched["clinician"]))
    assert response.status_code == 200 and "no-store" in response.headers["Cache-Control"]
    body = response.get_json()
    for name in ("launch", "openid", "offline_access"):
        assert name in body["scope"].split()
    if "fhirUser" in scope:  # g10 EHR Practitioner: fhirUser requested and returned, and it reads
        assert "fhirUser" in body["scope"].split()
        claims = orjson.loads(base64.urlsafe_b64decode(body["id_token"].split(".")[1] + "==="))
        assert claims["fhirUser"] == f"{AUD}/Practitioner/dr1"
        practitioner_read = client.get(
            "/fhir/general/Practitioner/dr1", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
        assert practitioner_read.status_code == 200
    assert body["patient"] == "p1" and "need_patient_banner" in body
    style = client.get(body["smart_style_url"].removeprefix(BASE_URL))
    assert style.status_code == 200 and style.mimetype == "application/json"
    assert client.get("/fhir/general/Patient/p1").status_code == 401
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/fhir/general/Patient/p1", headers=headers).status_code == 200
    other = client.get("/fhir/general/Patient/p2", headers=headers).status_code
    assert other == (200 if reads_other_patients else 404)
    assert launch.refresh(client, body["refresh_token"]).status_code == 200


@pytest.mark.parametrize(
    "verifier", [None, "", "random", "challenge"], ids=["no-verifier", "empty", "wrong", "the-challenge"]
)
def test_g10_invalid_pkce(make, client, patient, verifier):
    """§6 PKCE: each of the four launches gets 400 or 401 at the exchange."""
    registered = smart_app(make)
    launch = Launch(registered.key, registered.secret)
    code = launch.code(patient)
    sent = {"random": pkce_pair()[0], "challenge": launch.challenge}.get(verifier, verifier)
    assert launch.exchange(client, code, code_verifier=sent).status_code in (400, 401)


def test_limited_access_as_the_suites_check_it(make, client, patient):
    """§2 Limited Access: only the listed types granted; a denied type's read is 401 or 403."""
    registered = smart_app(make)
    scope = "launch/patient openid fhirUser offline_access"
    scope += " patient/Patient.rs patient/Condition.rs patient/Observation.rs"
    launch = Launch(registered.key, registered.secret, scope=scope)
    body = launch.exchange(client, launch.code(patient, untick=["patient/Observation.rs"])).get_json()
    granted = body["scope"].split()
    assert "patient/Patient.rs" in granted and "patient/Condition.rs" in granted
    assert "patient/Observation.rs" not in granted
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/fhir/general/Patient/p1", headers=headers).status_code == 200
    assert client.get("/fhir/general/Observation?patient=p1", headers=headers).status_code in (401, 403)


def test_a_public_client_gets_cors_at_the_token_exchange(make, client, patient):
    """§2, STU2.2: with an Origin, the public client's token response allows that origin or *."""
    registered = smart_app(make, public=True)
    launch = Launch(registered.key, None)
    form = {
        "grant_type": "authorization_code",
        "code": launch.code(patient),
        "redirect_uri": launch.redirect_uri,
        "code_verifier": launch.verifier,
        "client_id": registered.key,
    }
    response = client.post("/oauth/token", data=form, headers={"Origin": "https://inferno.example"})
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] in (
        "*",
        "https://inferno.example",
    )
    for path in ("/fhir/general/.well-known/smart-configuration", "/fhir/general/metadata"):
        assert (
            client.get(path, headers={"Origin": "https://inferno.example"}).headers[
                "Access-Control-Allow-Origin"
            ]
            == "*"
        )
