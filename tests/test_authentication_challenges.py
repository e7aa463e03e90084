"""Every 401 names how to authenticate (RFC 9110 §15.5.2), and a FHIR 401 says ``invalid_token``
only when a token came with the request (RFC 6750 §3.1)."""

from __future__ import annotations

import pytest

from app.sessions import COOKIE_NAME
from tests.conftest import basic_auth
from tests.web.conftest import hidden


@pytest.fixture
def hospital_key(make):
    make.hospital("general")
    return make.api_key("general")


def test_a_fhir_request_without_credentials_gets_the_bare_bearer_challenge(client, hospital_key):
    response = client.get("/fhir/general/Patient")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="fhirgate"'
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"x-api-key": "unknown", "x-api-secret": "wrong"},
    ],
)
def test_a_fhir_request_with_a_bad_credential_gets_invalid_token(client, hospital_key, headers):
    response = client.get("/fhir/general/Patient", headers=headers)

    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="fhirgate", error="invalid_token"')


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_oauth_401s_carry_a_challenge_whichever_way_the_client_authenticated(client, hospital_key, path):
    form = {"grant_type": "client_credentials", "token": "x"}
    by_post = client.post(path, data={**form, "client_id": hospital_key.key, "client_secret": "wrong"})
    by_basic = client.post(path, data=form, headers=basic_auth(hospital_key.key, "wrong"))
    anonymous = client.post(path, data=form)

    for response in (by_post, by_basic, anonymous):
        assert response.status_code == 401, response.get_data(as_text=True)
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="fhirgate"')
        assert response.get_json()["error"] == "invalid_client"
    assert 'error="invalid_client"' in by_basic.headers["WWW-Authenticate"]


def test_the_management_api_401_names_its_session_login(client):
    response = client.get("/api/session")

    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Cookie realm="fhirgate"')
    assert f'cookie-name="{COOKIE_NAME}"' in challenge
    assert set(response.get_json()) == {"error", "message"}


def test_a_failed_portal_login_401_carries_the_challenge(client):
    token = hidden(client.get("/login").data, "csrf_token")
    response = client.post(
        "/login", data={"email": "nobody@example.org", "password": "wrong", "csrf_token": token}
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Cookie realm="fhirgate"')
