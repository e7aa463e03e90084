"""The standalone patient launch with a client library written by others: Authlib's
``OAuth2Session`` (PKCE S256, a confidential client, client_secret_basic) against fhirgate
started as ``make run`` starts it. The patient's browser is a ``requests`` session that logs in
and submits the consent form as the page presents it."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from tests.conftest import PASSWORD
from tests.oauth.smart_launch import REDIRECT, consent_form, query_of, smart_app
from tests.servers import make_run_server

SCOPE = "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs"


@pytest.fixture
def server(app, tmp_path):
    with make_run_server(app, tmp_path / "server.log") as served:
        yield served.url


def approve_in_browser(server: str, authorization_url: str, email: str) -> str:
    """Log in and approve as the patient would; returns where the browser is sent back to."""
    browser = requests.Session()
    step = browser.get(authorization_url, allow_redirects=False, timeout=10)
    assert step.status_code == 303 and step.headers["Location"].startswith("/login?next=")
    login_page = browser.get(urljoin(server, step.headers["Location"]), timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
    nxt = re.search(r'name="next" value="([^"]+)"', login_page).group(1).replace("&amp;", "&")
    step = browser.post(
        f"{server}/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf, "next": nxt},
        allow_redirects=False,
        timeout=10,
    )
    assert step.status_code == 303, step.text[:300]
    consent = browser.get(urljoin(server, step.headers["Location"]), timeout=10)
    assert "Allow Steps" in consent.text
    form = consent_form(consent.text)
    decision = {**form.hidden, "grant": form.grants, "expiry": "30d", "decision": "approve"}
    step = browser.post(
        f"{server}/oauth/authorize/decision", data=decision, allow_redirects=False, timeout=10
    )
    assert step.status_code == 303 and step.headers["Location"].startswith(REDIRECT + "?")
    return step.headers["Location"]


def test_authlib_oauth2_session_as_a_confidential_client(app, make, server):
    make.hospital("general", "General Hospital")
    make.patient("general", "p1", "Doe")
    email = make.user("patient", "general", "p1")
    registered = smart_app(make)
    fhir_base = f"{server}/fhir/general"
    metadata = requests.get(f"{fhir_base}/.well-known/smart-configuration", timeout=10).json()

    session = OAuth2Session(
        registered.key,
        registered.secret,
        scope=SCOPE,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = generate_token(64)
    url, state = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, aud=fhir_base
    )
    back = approve_in_browser(server, url, email)
    assert query_of(back)["state"] == state and query_of(back)["iss"] == server

    token = session.fetch_token(
        metadata["token_endpoint"], authorization_response=back, code_verifier=verifier
    )
    assert token["patient"] == "p1" and token["id_token"] and token["refresh_token"]
    assert session.get(f"{fhir_base}/Patient/p1", timeout=10).status_code == 200
    assert session.get(f"{fhir_base}/Observation?patient=p1", timeout=10).status_code == 200
    assert session.get(f"{fhir_base}/Condition?patient=p1", timeout=10).status_code == 403  # not asked for

    refreshed = session.refresh_token(metadata["token_endpoint"])
    assert (
        refreshed["access_token"] != token["access_token"]
        and refreshed["refresh_token"] != token["refresh_token"]
    )
    assert session.get(f"{fhir_base}/Patient/p1", timeout=10).status_code == 200
