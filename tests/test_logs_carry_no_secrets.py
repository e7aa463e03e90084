"""The logs of a full token flow, captured at DEBUG level, carry no secret, password or token.

Authlib logs at debug level (for instance ``"Issue token %r to %r"`` in its grants), and so
may any library on the request path; the root logger is set to DEBUG so that nothing is
filtered out before the check. SQLAlchemy's own loggers, which it sets to WARNING, are
also set to DEBUG: an operator who turns on SQL echo must not find secrets in the
statements' parameters or result rows either. Every record's rendered message and
formatted exception text is searched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives import serialization

from oauth.jws import b64url_encode
from oauth.keys import keyring
from tests.conftest import PASSWORD, Credential, basic_auth, token_request

PORTAL_PASSWORD = "portal password of patient seven"
WRONG_SECRET = "hks_this-is-not-the-secret-of-this-key-0123456789"
SESSION_COOKIE = "fhirgate_session"


@dataclass
class Flow:
    """The secrets a token flow handled, and the log records it produced."""

    secrets: dict[str, str] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)
    records: list[logging.LogRecord] = field(default_factory=list)

    def logged_text(self) -> str:
        formatter = logging.Formatter()
        parts = []
        for record in self.records:
            parts.append(record.getMessage())
            if record.exc_info:
                parts.append(formatter.formatException(record.exc_info))
            if record.exc_text:
                parts.append(record.exc_text)
            if record.stack_info:
                parts.append(record.stack_info)
        return "\n".join(parts)


def _ok(response, status=200) -> dict:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _token(flow: Flow, response) -> str:
    token = _ok(response)["access_token"]
    flow.tokens.append(token)
    return token


@pytest.fixture
def flow(app, make, client, caplog) -> Flow:
    """Run every step of the token flow with DEBUG logging captured."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    flow = Flow(secrets={"factory password": PASSWORD, "portal password": PORTAL_PASSWORD})
    hid = make.hospital("general")
    make.hospital("sandbox", "Sandbox")

    # A hospital API key from the admin API, and tokens through Basic and through the body.
    admin = make.as_role("hospital-admin", hid)
    flow.secrets["admin session cookie"] = admin.get_cookie(SESSION_COOKIE).value
    body = _ok(
        admin.post(
            f"/api/hospitals/{hid}/api-keys", json={"name": "CRM", "permissions": ["system/Patient.rs"]}
        ),
        201,
    )
    key = Credential(body["key"], body["secret"], body)
    flow.secrets["api key secret"] = key.secret
    flow.tokens.append(body["token"])
    basic = _token(flow, token_request(client, key))
    _token(
        flow,
        client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": key.key, "client_secret": key.secret},
        ),
    )

    # A wrong secret, through Basic and through the body.
    flow.secrets["wrong secret"] = WRONG_SECRET
    assert token_request(client, Credential(key.key, WRONG_SECRET, {})).status_code == 401
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": key.key, "client_secret": WRONG_SECRET},
    )
    assert response.status_code == 401

    # Introspection and revocation of the Basic token.
    auth = basic_auth(key.key, key.secret)
    assert _ok(client.post("/oauth/introspect", data={"token": basic}, headers=auth))["active"] is True
    assert client.post("/oauth/revoke", data={"token": basic}, headers=auth).status_code == 200
    assert _ok(client.post("/oauth/introspect", data={"token": basic}, headers=auth))["active"] is False

    # A patient portal login, its credential, and a token for it.
    make.patient(hid, "p7")
    _ok(
        admin.post(
            f"/api/hospitals/{hid}/patients/p7/portal-access",
            json={"email": "patient7@example.org", "password": PORTAL_PASSWORD},
        ),
        201,
    )
    portal = app.test_client()
    _ok(portal.post("/api/session", json={"email": "patient7@example.org", "password": PORTAL_PASSWORD}))
    flow.secrets["patient session cookie"] = portal.get_cookie(SESSION_COOKIE).value
    body = _ok(portal.post("/api/me/credentials", json={"name": "Health App"}), 201)
    patient_cred = Credential(body["key"], body["secret"], body)
    flow.secrets["patient credential secret"] = patient_cred.secret
    _token(flow, token_request(client, patient_cred))

    # An application, a token, a secret rotation, and a token with the new secret.
    developer = make.as_role("developer")
    flow.secrets["developer session cookie"] = developer.get_cookie(SESSION_COOKIE).value
    application = make.application(developer)
    flow.secrets["application secret"] = application.secret
    _token(flow, token_request(client, application))
    body = _ok(developer.post(f"/api/apps/{application.key}/secret"))
    rotated = Credential(application.key, body["client_secret"], body)
    flow.secrets["rotated application secret"] = rotated.secret
    assert token_request(client, application).status_code == 401
    _token(flow, token_request(client, rotated))

    flow.records = list(caplog.records)
    return flow


def test_flow_is_logged_at_debug_level(flow):
    """The capture must see the flow's records, down to SQL parameters and result rows, and
    Authlib's debug records would be let through, or the other tests prove nothing."""
    assert logging.getLogger("authlib.oauth2.rfc6749.grants.client_credentials").isEnabledFor(logging.DEBUG)
    sql = [record for record in flow.records if record.name.startswith("sqlalchemy.engine")]
    assert any("INSERT INTO oauth_clients" in record.getMessage() for record in sql)
    assert any(record.levelno == logging.DEBUG for record in sql)


def test_logs_carry_no_secret_or_password(flow):
    """Client secrets (right, wrong, rotated), passwords and session cookies never reach a log."""
    logged = flow.logged_text()
    assert [name for name, secret in flow.secrets.items() if secret in logged] == []


def test_logs_carry_no_access_token(flow):
    """A logged access token is a usable credential until it expires."""
    logged = flow.logged_text()
    assert [n for n, token in enumerate(flow.tokens) if token in logged] == []


def test_logs_carry_no_token_signature(flow):
    """Not even the signature part: with it, a token's header and claims can be rebuilt from
    what else is logged (client id, scope, times), and the whole token replayed."""
    logged = flow.logged_text()
    assert [n for n, token in enumerate(flow.tokens) if token.rsplit(".", 1)[1] in logged] == []


def test_logs_carry_no_signing_private_key(app, flow):
    """The signing key is used on every token request; no shape of it may be logged."""
    with app.app_context():
        _, private_key = keyring().signing_key()
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    d = private_key.private_numbers().private_value.to_bytes(32, "big")
    shapes = {
        "PKCS8 DER (hex)": der.hex(),
        "PKCS8 DER (repr)": repr(der)[2:-1],
        "PEM body": "".join(line for line in pem.splitlines() if not line.startswith("-----")),
        "d (hex)": d.hex(),
        "d (repr)": repr(d)[2:-1],
        "d (base64url)": b64url_encode(d),
    }
    logged = flow.logged_text()
    assert [name for name, shape in shapes.items() if shape in logged] == []
