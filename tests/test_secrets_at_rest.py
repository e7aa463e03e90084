"""A dump of every table, taken after each kind of credential was made and used, holds no
secret, no password, no access token and no private key in plaintext.

The credentials are made through the real management API, used once at the token endpoint
(which also creates the signing key), and then every table the database holds is read
with ``SELECT *``. Each value is rendered as text, and binary values also as hex, latin-1
and base64, so that a secret stored in any of these shapes would be found.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import inspect, select, text

from app.extensions import db
from oauth.credentials import hash_secret, secret_matches
from oauth.jws import b64url_encode
from oauth.keys import _decrypt_private_key, keyring
from oauth.models import OAuthClient, SigningKey
from tests.conftest import PASSWORD, Credential, basic_auth, token_request
from tests.oauth.smart_launch import REDIRECT, Launch

PORTAL_PASSWORD = "portal password of patient seven"
GIVEN_APP_SECRET = "a-developer-chosen-secret.long-enough_0123456789"
SESSION_COOKIE = "fhirgate_session"


@dataclass
class World:
    """Everything secret the test made, and the dump taken afterwards."""

    secrets: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)
    grants: dict[str, str] = field(default_factory=dict)  # authorization codes, refresh tokens
    cookies: list[str] = field(default_factory=list)
    client_ids: list[str] = field(default_factory=list)
    dump: str = ""


def _render(value) -> list[str]:
    if isinstance(value, memoryview | bytearray):
        value = bytes(value)
    if isinstance(value, bytes):
        return [
            value.hex(),
            value.decode("latin-1"),
            base64.b64encode(value).decode(),
            base64.urlsafe_b64encode(value).decode(),
        ]
    return [str(value)]


def dump_database() -> str:
    """``SELECT *`` from every table in the database, rendered as one text."""
    names = set(inspect(db.engine).get_table_names())
    assert {table.name for table in db.metadata.sorted_tables} <= names
    parts = []
    with db.engine.connect() as connection:
        for name in sorted(names):
            for row in connection.execute(text(f'SELECT * FROM "{name}"')):
                for value in row:
                    parts.extend(_render(value))
    return "\n".join(parts)


def _token(client, cred: Credential, world: World, **form) -> str:
    response = token_request(client, cred, **form)
    assert response.status_code == 200, response.get_json()
    token = response.get_json()["access_token"]
    world.tokens.append(token)
    return token


def _cookie(flask_client) -> str:
    cookie = flask_client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    return cookie.value


@pytest.fixture
def world(app, make, client) -> World:
    """Make and use one credential of every kind, then dump the database."""
    world = World(passwords={"factory users": PASSWORD, "portal login": PORTAL_PASSWORD})
    hid = make.hospital("general")
    make.hospital("sandbox", "Sandbox")

    # Hospital API key: its secret and the token handed out on creation.
    key = make.api_key(hid)
    world.secrets["api key"] = key.secret
    world.tokens.append(key.body["token"])
    world.client_ids.append(key.key)
    _token(client, key, world)

    # A patient portal login with a known password, used to make a patient credential.
    make.patient(hid, "p7")
    admin = make.as_role("hospital-admin", hid)
    world.cookies.append(_cookie(admin))
    response = admin.post(
        f"/api/hospitals/{hid}/patients/p7/portal-access",
        json={"email": "patient7@example.org", "password": PORTAL_PASSWORD},
    )
    assert response.status_code == 201, response.get_json()
    portal = app.test_client()
    response = portal.post(
        "/api/session", json={"email": "patient7@example.org", "password": PORTAL_PASSWORD}
    )
    assert response.status_code == 200, response.get_json()
    world.cookies.append(_cookie(portal))
    response = portal.post("/api/me/credentials", json={"name": "Portal app"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    portal_cred = Credential(body["key"], body["secret"], body)
    world.secrets["portal patient credential"] = portal_cred.secret
    world.client_ids.append(portal_cred.key)
    _token(client, portal_cred, world)

    # A patient credential from the factory.
    patient_cred = make.patient_credential(hid)
    world.secrets["patient credential"] = patient_cred.secret
    world.client_ids.append(patient_cred.key)
    _token(client, patient_cred, world)

    # Applications: a generated secret, rotated, and a secret the developer chose.
    developer = make.as_role("developer")
    world.cookies.append(_cookie(developer))
    application = make.application(developer)
    world.secrets["application (before rotation)"] = application.secret
    world.client_ids.append(application.key)
    _token(client, application, world)
    response = developer.post(f"/api/apps/{application.key}/secret")
    assert response.status_code == 200, response.get_json()
    rotated = Credential(application.key, response.get_json()["client_secret"], response.get_json())
    world.secrets["application (after rotation)"] = rotated.secret
    _token(client, rotated, world)

    response = developer.post("/api/apps", json={"name": "Chosen secret", "client_secret": GIVEN_APP_SECRET})
    assert response.status_code == 201, response.get_json()
    chosen = Credential(response.get_json()["client_id"], GIVEN_APP_SECRET, response.get_json())
    world.secrets["application (chosen secret)"] = chosen.secret
    world.client_ids.append(chosen.key)
    revoked = _token(client, chosen, world)

    # A SMART App Launch by the portal patient: its code, ID token and refresh tokens (the
    # first one rotated out) are shown once and kept, if at all, as keyed hashes.
    smart = make.application(developer, redirect_uris=[REDIRECT], name="Smart")
    world.secrets["smart application"] = smart.secret
    world.client_ids.append(smart.key)
    scope = "launch/patient openid fhirUser offline_access patient/*.rs"
    launch = Launch(smart.key, smart.secret, scope=scope)
    code = launch.code(portal)
    world.grants["authorization code"] = code
    issued = launch.exchange(client, code).get_json()
    world.tokens.extend([issued["access_token"], issued["id_token"]])
    refreshed = launch.refresh(client, issued["refresh_token"]).get_json()
    world.tokens.append(refreshed["access_token"])
    world.grants["refresh token (used)"] = issued["refresh_token"]
    world.grants["refresh token (current)"] = refreshed["refresh_token"]

    # A revoked token leaves its jti behind; the token itself must not be.
    response = client.post(
        "/oauth/revoke", data={"token": revoked}, headers=basic_auth(chosen.key, chosen.secret)
    )
    assert response.status_code == 200

    with app.app_context():
        world.dump = dump_database()
    return world


def _leaks(dump: str, needles: dict[str, str]) -> list[str]:
    haystack = dump.lower()
    return [name for name, needle in needles.items() if needle.lower() in haystack]


def test_dump_sees_the_credentials(world):
    """The dump must really contain the tables' rows, or every other test here proves nothing."""
    for client_id in world.client_ids:
        assert client_id in world.dump


def test_dump_holds_no_client_secret(world):
    """Client secrets are shown once and kept only as keyed hashes (including rotated ones)."""
    assert _leaks(world.dump, world.secrets) == []


def test_dump_holds_authorization_codes_and_refresh_tokens_only_as_keyed_hashes(app, world):
    assert _leaks(world.dump, world.grants) == []
    with_hashes = {name: hash_secret(value, app.config["SECRET_KEY"]) for name, value in world.grants.items()}
    assert set(_leaks(world.dump, with_hashes)) == set(world.grants)  # stored, as hashes


def test_dump_holds_no_password(world):
    """Passwords of people are kept only as argon2id hashes."""
    assert _leaks(world.dump, world.passwords) == []


def test_dump_holds_no_access_token(world):
    """Access tokens are never stored, not even in part (the signature alone would identify one)."""
    needles = {}
    for number, token in enumerate(world.tokens):
        needles[f"token {number}"] = token
        needles[f"signature of token {number}"] = token.rsplit(".", 1)[1]
    assert _leaks(world.dump, needles) == []


def test_dump_holds_no_session_cookie(world):
    """Web sessions are looked up by the cookie's hash; the cookie itself logs in as the user."""
    assert _leaks(world.dump, {f"cookie {n}": c for n, c in enumerate(world.cookies)}) == []


def _private_key_shapes(private_key) -> dict[str, str]:
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sec1 = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pem_lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    numbers = private_key.private_numbers()
    d = numbers.d if isinstance(private_key, rsa.RSAPrivateKey) else numbers.private_value
    d_bytes = d.to_bytes((d.bit_length() + 7) // 8, "big")
    shapes = {
        "PKCS8 DER (hex)": der.hex(),
        "SEC1 DER (hex)": sec1.hex(),
        "PEM body": "".join(pem_lines),
        "d (hex)": d_bytes.hex(),
        "d (base64url)": b64url_encode(d_bytes),
        "d (base64)": base64.b64encode(d_bytes).decode(),
        "d (decimal)": str(d),
        "d (raw bytes)": d_bytes.decode("latin-1"),
    }
    shapes.update({f"PEM line {n}": line for n, line in enumerate(pem_lines)})
    return shapes


def test_dump_holds_no_signing_private_key(app, world):
    """The signing key is stored only encrypted under the KEK: a database dump cannot sign tokens."""
    with app.app_context():
        kid, private_key = keyring().signing_key()
        id_kid, id_key = keyring().id_token_signing_key()
        stored = db.session.scalars(select(SigningKey)).all()
        assert {kid, id_kid} <= {row.kid for row in stored}
        keys = {kid: private_key, id_kid: id_key}
        kek = app.config["FHIRGATE_KEK"]
        keys.update(
            {row.kid: _decrypt_private_key(row.private_key_encrypted, row.kid, kek) for row in stored}
        )
    for key_id, key in keys.items():
        assert _leaks(world.dump, _private_key_shapes(key)) == [], key_id


def test_secret_hash_column_holds_keyed_hashes(app, world):
    """Every client row stores a hash that verifies its current secret, so nothing is missing
    from the dump merely because nothing was stored; the rotated-out secret no longer verifies."""
    current = {name: secret for name, secret in world.secrets.items() if "before rotation" not in name}
    with app.app_context():
        rows = {row.client_id: row.secret_hash for row in db.session.scalars(select(OAuthClient))}
        assert set(world.client_ids) == set(rows)
        assert all(rows.values())
        for name, secret in current.items():
            assert any(secret_matches(secret, stored) for stored in rows.values()), name
        old = world.secrets["application (before rotation)"]
        assert not any(secret_matches(old, stored) for stored in rows.values())


def test_the_keyed_hash_is_hmac_sha256_under_the_pepper_of_the_secret_key(app):
    """Pinned: hashes stored by any version must keep verifying, with or without an app context."""
    pepper = hmac.new(app.config["SECRET_KEY"].encode(), b"fhirgate client-secret pepper v1", hashlib.sha256)
    expected = hmac.new(pepper.digest(), b"hks_example", hashlib.sha256).hexdigest()
    with app.app_context():
        assert hash_secret("hks_example") == expected
    assert hash_secret("hks_example", app.config["SECRET_KEY"]) == expected
    assert hash_secret("hks_example", "another secret key") != expected
    assert secret_matches("hks_example", expected, app.config["SECRET_KEY"])
    assert not secret_matches("hks_examplf", expected, app.config["SECRET_KEY"])


def test_private_key_decrypts_only_with_the_right_kek(app, world):
    """The stored key is useless without FHIRGATE_KEK: the right KEK yields the signing key,
    any other KEK fails authentication instead of yielding garbage."""
    with app.app_context():
        kid, private_key = keyring().signing_key()
        row = db.session.get(SigningKey, kid)
        kek = app.config["FHIRGATE_KEK"]
        decrypted = _decrypt_private_key(row.private_key_encrypted, kid, kek)
        assert decrypted.private_numbers() == private_key.private_numbers()
        with pytest.raises(InvalidTag):
            _decrypt_private_key(row.private_key_encrypted, kid, kek + "x")
        with pytest.raises(InvalidTag):
            _decrypt_private_key(row.private_key_encrypted, kid, "another key-encryption key " * 2)


def test_private_key_ciphertext_is_bound_to_its_kid(app, world):
    """The kid is the associated data: a ciphertext copied onto another key's row fails to decrypt."""
    with app.app_context():
        kid, _ = keyring().signing_key()
        row = db.session.get(SigningKey, kid)
        with pytest.raises(InvalidTag):
            _decrypt_private_key(row.private_key_encrypted, "some-other-kid", app.config["FHIRGATE_KEK"])
