"""Off-the-shelf OAuth client libraries obtain tokens over a real socket.

The token endpoint is reached at http://127.0.0.1:<port>/oauth/token while the issuer stays
the configured BASE_URL: the server takes its issuer from configuration, not from the
request. Every token is then verified independently with joserfc against /oauth/jwks.
"""

from __future__ import annotations

import time

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import KeySet
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session as RequestsOAuthlibSession

from tests.conftest import BASE_URL
from tests.oauth.signing import TOKEN_URL, ClientKey
from tests.servers import jwks_host, threaded_server

TIMEOUT = 10


@pytest.fixture
def server_url(app):
    """The session app on an ephemeral loopback port, served by background threads."""
    with threaded_server(app) as url:
        yield url


@pytest.fixture
def api_key(make):
    return make.api_key(make.hospital("general"))


def verify_access_token(server_url: str, access_token: str, client_id: str) -> None:
    """Check signature, header and RFC 9068 claims without any fhirgate code."""
    response = requests.get(f"{server_url}/oauth/jwks", timeout=TIMEOUT)
    assert response.status_code == 200
    keys = KeySet.import_key_set(response.json())
    token = jwt.decode(access_token, keys, algorithms=["ES256"])
    assert token.header["typ"] == "at+jwt"
    assert token.header["alg"] == "ES256"
    now = int(time.time())
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=5,
        iss={"essential": True, "value": BASE_URL},
        sub={"essential": True, "value": client_id},
        client_id={"essential": True, "value": client_id},
        aud={"essential": True, "value": f"{BASE_URL}/fhir/general"},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        scope={"essential": True, "value": "system/Patient.rs"},
    )
    registry.validate(token.claims)
    assert token.claims["iat"] <= now + 5 < token.claims["exp"]
    assert isinstance(token.claims["jti"], str) and token.claims["jti"]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_obtains_verifiable_token(server_url, api_key, method, monkeypatch):
    """Authlib's own requests client must work with both secret methods we advertise."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    with AuthlibSession(api_key.key, api_key.secret, token_endpoint_auth_method=method) as session:
        token = session.fetch_token(
            f"{server_url}/oauth/token", grant_type="client_credentials", timeout=TIMEOUT
        )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "system/Patient.rs"
    verify_access_token(server_url, token["access_token"], api_key.key)


def test_requests_oauthlib_backend_client_obtains_verifiable_token(server_url, api_key, monkeypatch):
    """requests-oauthlib's BackendApplicationClient (Basic auth by default) is a common integration."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with RequestsOAuthlibSession(client=BackendApplicationClient(client_id=api_key.key)) as session:
        token = session.fetch_token(
            token_url=f"{server_url}/oauth/token",
            client_id=api_key.key,
            client_secret=api_key.secret,
            timeout=TIMEOUT,
        )
    assert token["token_type"] == "Bearer"
    verify_access_token(server_url, token["access_token"], api_key.key)


def test_authlib_private_key_jwt_client_with_a_jwks_uri(server_url, make, monkeypatch):
    """Authlib's client-side ``PrivateKeyJWT`` (RFC 7523) against keys served at a jwks_uri."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    hospital = make.hospital("general")
    signer = ClientKey("RS384")
    with jwks_host() as host:
        host.jwks = signer.jwks()
        api_key = make.api_key(hospital, jwks_uri=host.url)
        private_jwk = {**signer.key.as_dict(private=True), "kid": signer.kid}
        # Authlib signs exp = iat + 3600 unless told otherwise; SMART allows five minutes.
        auth = PrivateKeyJWT(
            TOKEN_URL, claims={"exp": int(time.time()) + 240}, headers={"kid": signer.kid}, alg="RS384"
        )
        with AuthlibSession(api_key.key, private_jwk, token_endpoint_auth_method=auth) as session:
            token = session.fetch_token(
                f"{server_url}/oauth/token", grant_type="client_credentials", timeout=TIMEOUT
            )
        assert host.fetches == 1
    assert token["token_type"] == "Bearer" and token["expires_in"] <= 300
    verify_access_token(server_url, token["access_token"], api_key.key)
