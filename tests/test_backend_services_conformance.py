"""The checks public SMART Backend Services conformance suites make, over a real socket.

They follow the published test flow (discovery, then token requests): an unknown grant type
is 400, a wrong ``client_assertion_type`` is 400 or 401, a valid signed request is 200 with
``access_token``, ``token_type``, a numeric ``expires_in`` and ``scope``; the discovery
document is served as ``application/json`` with the fields those suites read.
"""

from __future__ import annotations

import pytest
import requests

from tests.oauth.signing import ASSERTION_TYPE, TOKEN_URL, ClientKey, assertion_form
from tests.servers import threaded_server

TIMEOUT = 10


@pytest.fixture
def server_url(app):
    with threaded_server(app) as url:
        yield url


@pytest.fixture
def backend(make, sandbox):
    signer = ClientKey("RS384")
    return signer, make.application(jwks=signer.jwks()).key


def _token(server_url: str, form: dict) -> requests.Response:
    return requests.post(f"{server_url}/oauth/token", data=form, timeout=TIMEOUT)


def test_discovery(server_url, sandbox):
    response = requests.get(
        f"{server_url}/fhir/sandbox/.well-known/smart-configuration",
        headers={"Accept": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    body = response.json()
    assert body["token_endpoint"] == TOKEN_URL
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
    assert {"RS384", "ES384"} & set(body["token_endpoint_auth_signing_alg_values_supported"])
    assert "client_credentials" in body["grant_types_supported"]
    assert any(scope.startswith("system/") for scope in body["scopes_supported"])
    assert "client-confidential-asymmetric" in body["capabilities"]


def test_an_unknown_grant_type_is_400(server_url, backend):
    signer, client_id = backend
    response = _token(server_url, assertion_form(signer.assertion(client_id), grant_type="not_a_grant_type"))
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


def test_a_bad_client_assertion_type_is_400_or_401(server_url, backend):
    signer, client_id = backend
    form = assertion_form(signer.assertion(client_id))
    form["client_assertion_type"] = "not_an_assertion_type"
    response = _token(server_url, form)
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_request", "invalid_client")


def test_a_valid_request_gets_a_token(server_url, backend):
    signer, client_id = backend
    response = _token(server_url, assertion_form(signer.assertion(client_id), scope="system/*.rs"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"] and body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] <= 300
    assert body["scope"] == "system/*.rs"
    assert ASSERTION_TYPE not in response.text
    fhir = requests.get(
        f"{server_url}/fhir/sandbox/Patient?_count=1",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=TIMEOUT,
    )
    assert fhir.status_code == 200
