"""SMART App Launch, standalone patient launch (authorization code + PKCE), end to end through
the test client: the authorization request, the patient's consent, the code exchange, FHIR
requests under the patient's choices, refresh with rotation, and revocation in the portal."""

from __future__ import annotations

import pytest

from app.extensions import db
from oauth.models import Authorization
from tests.conftest import BASE_URL
from tests.oauth.smart_launch import Launch, query_of, smart_app


@pytest.fixture
def general(make):
    make.hospital("general", "General Hospital")
    make.patient("general", "p1", "Doe")
    make.patient("general", "p2", "Roe")
    return "general"


@pytest.fixture
def patient(make, general):
    return make.as_role("patient", general, "p1")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
def test_standalone_launch_reads_what_the_patient_left_ticked_and_refreshes(make, client, patient, public):
    app = smart_app(make, public=public)
    launch = Launch(app.key, app.secret)
    code = launch.code(patient, untick=["patient/Condition.rs"])
    response = launch.exchange(client, code)
    assert response.status_code == 200, response.get_json()
    assert "no-store" in response.headers["Cache-Control"] and response.headers["Pragma"] == "no-cache"
    body = response.get_json()
    assert body["token_type"].lower() == "bearer" and isinstance(body["expires_in"], int)
    assert body["patient"] == "p1"
    assert body["scope"].split() == [
        "launch/patient",
        "offline_access",
        "patient/Patient.rs",
        "patient/Observation.rs",
    ]
    assert body["refresh_token"].startswith("rt_")

    token = body["access_token"]
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 200
    assert (
        client.get("/fhir/general/Patient/p2", headers=bearer(token)).status_code == 404
    )  # not their record
    refused = client.get("/fhir/general/Condition?patient=p1", headers=bearer(token))
    assert refused.status_code == 403  # unticked
    assert client.get("/fhir/general/Observation", headers=bearer(token)).status_code == 200
    assert client.get("/fhir/general/Patient/p1").status_code == 401

    refreshed = launch.refresh(client, body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.get_json()
    again = refreshed.get_json()
    assert "no-store" in refreshed.headers["Cache-Control"] and refreshed.headers["Pragma"] == "no-cache"
    assert set(again["scope"].split()) <= set(body["scope"].split())
    assert again["refresh_token"] != body["refresh_token"]  # rotated
    assert client.get("/fhir/general/Patient/p1", headers=bearer(again["access_token"])).status_code == 200


def test_the_token_endpoint_says_what_was_granted_and_nothing_the_patient_could_not_grant(
    make, client, patient
):
    app = smart_app(make)
    launch = Launch(
        app.key, app.secret, scope="launch/patient patient/Patient.rs user/Observation.rs system/*.rs"
    )
    page = launch.consent(patient).get_data(as_text=True)
    assert "Example Health" in page and "General Hospital" in page and "Steps" in page
    assert "Read your name, birth date and contact details" in page
    assert "user/Observation.rs" in page and "will not get" in page
    body = launch.exchange(client, launch.code(patient)).get_json()
    assert body["scope"] == "launch/patient patient/Patient.rs"
    assert "refresh_token" not in body  # neither offline_access nor online_access


def test_narrowing_at_refresh_and_nothing_wider(make, client, patient):
    app = smart_app(make)
    launch = Launch(app.key, app.secret)
    body = launch.exchange(client, launch.code(patient)).get_json()
    narrowed = launch.refresh(client, body["refresh_token"], scope="patient/Patient.rs")
    assert narrowed.status_code == 200 and narrowed.get_json()["scope"] == "patient/Patient.rs"
    token = narrowed.get_json()["access_token"]
    assert client.get("/fhir/general/Observation", headers=bearer(token)).status_code == 403
    wider = launch.refresh(client, narrowed.get_json()["refresh_token"], scope="patient/*.rs")
    assert wider.status_code == 400 and wider.get_json()["error"] == "invalid_scope"
    # refused before it was spent: the same refresh token still works, with the full scope
    full = launch.refresh(client, narrowed.get_json()["refresh_token"])
    assert full.status_code == 200 and "patient/Observation.rs" in full.get_json()["scope"]


def test_the_patient_revokes_the_app_in_the_portal(make, client, patient):
    app = smart_app(make)
    launch = Launch(app.key, app.secret)
    body = launch.exchange(client, launch.code(patient)).get_json()
    token = body["access_token"]
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 200

    portal = patient.get("/portal").get_data(as_text=True)
    assert "Connected apps" in portal and "Steps" in portal
    listing = patient.get("/portal/apps").get_data(as_text=True)
    assert "Read your lab results, vital signs and other measurements" in listing
    with make.app.app_context():
        approval_id = db.session.query(Authorization.id).scalar()
    history = patient.get(f"/portal/apps/{approval_id}")
    assert history.status_code == 200 and "read" in history.get_data(as_text=True)

    from tests.oauth.smart_launch import CSRF

    csrf = CSRF.search(listing).group(1)
    revoked = patient.post(f"/portal/apps/{approval_id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 401
    refused = launch.refresh(client, body["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert "revoked" in patient.get("/portal/apps").get_data(as_text=True)


def test_another_patient_cannot_see_or_revoke_the_connection(make, client, patient, general):
    app = smart_app(make)
    launch = Launch(app.key, app.secret)
    launch.exchange(client, launch.code(patient))
    with make.app.app_context():
        approval_id = db.session.query(Authorization.id).scalar()
    other = make.as_role("patient", general, "p2")
    assert other.get(f"/portal/apps/{approval_id}").status_code == 404
    page = other.get("/portal/apps").get_data(as_text=True)
    assert "Steps" not in page
    from tests.oauth.smart_launch import CSRF

    csrf = CSRF.search(page).group(1)
    assert other.post(f"/portal/apps/{approval_id}/revoke", data={"csrf_token": csrf}).status_code == 404


def test_signing_in_comes_back_to_the_consent_page(make, general):
    app = smart_app(make)
    launch = Launch(app.key, app.secret)
    email = make.user("patient", general, "p1")
    browser = make.app.test_client()
    first = browser.get(launch.authorize_url())
    assert first.status_code == 303 and first.headers["Location"].startswith("/login?next=")
    login_page = browser.get(first.headers["Location"]).get_data(as_text=True)
    from tests.conftest import PASSWORD
    from tests.oauth.smart_launch import CSRF

    logged_in = browser.post(
        "/login",
        data={
            "email": email,
            "password": PASSWORD,
            "csrf_token": CSRF.search(login_page).group(1),
            "next": query_of(first.headers["Location"])["next"],
        },
    )
    assert logged_in.status_code == 303 and logged_in.headers["Location"].startswith("/oauth/authorize?")
    assert "Allow Steps" in browser.get(logged_in.headers["Location"]).get_data(as_text=True)


def test_authorize_post_takes_the_same_request(make, patient):
    app = smart_app(make)
    launch = Launch(app.key, app.secret)
    page = patient.post("/oauth/authorize", data=launch.parameters())
    assert page.status_code == 200 and "Allow Steps" in page.get_data(as_text=True)


def test_denying_sends_access_denied(make, patient):
    app = smart_app(make)
    launch = Launch(app.key, app.secret)
    response = launch.decide(patient, decision="deny")
    assert response.status_code == 303
    params = query_of(response.headers["Location"])
    assert (
        params["error"] == "access_denied" and params["state"] == launch.state and params["iss"] == BASE_URL
    )
    assert "code" not in params


def test_the_aud_must_be_a_fhir_server_here(make, patient):
    app = smart_app(make)
    for aud in (None, "https://inferno.healthit.gov/invalid_aud", f"{BASE_URL}/fhir/nowhere"):
        response = patient.get(Launch(app.key, app.secret, aud=aud).authorize_url())
        assert response.status_code == 400 and "Location" not in response.headers
        assert "aud" in response.get_data(as_text=True)


def test_the_consent_form_may_send_the_patient_on_to_the_app_and_nowhere_else(make, patient):
    """CSP form-action governs the redirect after the decision: the app's origin is named."""
    app = smart_app(make)
    page = Launch(app.key, app.secret).consent(patient)
    policy = page.headers["Content-Security-Policy"]
    assert "form-action 'self' https://app.example;" in policy and "frame-ancestors 'none'" in policy


CORS_ORIGIN = {"Origin": "https://app.example"}


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/general/metadata",
        "/fhir/general/.well-known/smart-configuration",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/oauth/jwks",
    ],
)
def test_browser_apps_may_read_discovery_and_keys(client, general, path):
    response = client.get(path, headers=CORS_ORIGIN)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_public_browser_client_gets_cors_on_the_token_endpoint_and_the_fhir_api(make, client, patient):
    app = smart_app(make, public=True)
    launch = Launch(app.key, None)
    preflight = client.options(
        "/oauth/token",
        headers={
            **CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    code = launch.code(patient)
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": launch.redirect_uri,
            "code_verifier": launch.verifier,
            "client_id": app.key,
        },
        headers=CORS_ORIGIN,
    )
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    token = response.get_json()["access_token"]
    preflight = client.options(
        "/fhir/general/Patient/p1",
        headers={
            **CORS_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert (
        preflight.status_code == 204 and "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    )
    read = client.get("/fhir/general/Patient/p1", headers={**CORS_ORIGIN, **bearer(token)})
    assert read.status_code == 200 and read.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in read.headers["Access-Control-Expose-Headers"]
    assert read.headers["Cache-Control"] == "no-store"  # a browser keeps no record, nor answers from one
    info = client.get("/oauth/userinfo", headers={**CORS_ORIGIN, **bearer(token)})
    assert info.headers["Access-Control-Allow-Origin"] == "*"


def test_the_cookie_surfaces_get_no_cors(make, client, patient):
    for path in ("/api/session", "/portal", "/oauth/authorize", "/login"):
        response = patient.get(path, headers=CORS_ORIGIN)
        assert "Access-Control-Allow-Origin" not in response.headers, path
