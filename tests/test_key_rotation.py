"""Signing key rotation with ``fhirgate keys rotate``.

Tokens signed before a rotation stay verifiable through the JWK Set until they have all
expired; tokens signed after it carry the new ``kid``; a key retired longer ago than the
longest token lifetime is no longer published; private keys are stored encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from app.extensions import db
from app.timeutil import utcnow
from oauth.keys import RELOAD_SECONDS, keyring
from oauth.models import SigningKey
from tests.conftest import Credential, basic_auth, token_request


@dataclass
class Rotation:
    key: Credential
    old_token: str
    old_kid: str
    old_private_key: ec.EllipticCurvePrivateKey
    new_kid: str
    output: str


def _token(client, key: Credential) -> str:
    response = token_request(client, key)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def _published(client) -> dict:
    response = client.get("/oauth/jwks")
    assert response.status_code == 200
    return response.get_json()


def _published_kids(client) -> list[str]:
    """The access-token keys published (the RS256 ID-token key rotates beside them)."""
    return [jwk["kid"] for jwk in _published(client)["keys"] if jwk["alg"] == "ES256"]


def _verify(client, token: str) -> jwt.Token:
    """Verify ``token`` the way a resource server would: against the published JWK Set."""
    return jwt.decode(token, KeySet.import_key_set(_published(client)), algorithms=["ES256"])


def _current_kid(app) -> str:
    with app.app_context():
        current = select(SigningKey).where(SigningKey.retired_at.is_(None), SigningKey.alg == "ES256")
        rows = db.session.scalars(current).all()
        assert len(rows) == 1
        return rows[0].kid


def _rotate(app) -> str:
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def rotation(app, make, client) -> Rotation:
    """A token signed with the first key, then ``fhirgate keys rotate``."""
    hid = make.hospital("general")
    key = make.api_key(hid)
    old_token = _token(client, key)
    with app.app_context():
        old_kid, old_private_key = keyring().signing_key()
    output = _rotate(app)
    new_kid = _current_kid(app)
    assert new_kid != old_kid
    return Rotation(key, old_token, old_kid, old_private_key, new_kid, output)


def test_rotate_command_names_the_new_key(rotation):
    """The operator sees which key now signs, to match it against the JWK Set."""
    assert rotation.new_kid in rotation.output


def test_jwks_lists_old_and_new_kids_after_rotation(client, rotation):
    """Resource servers need the old public key until the old tokens expire."""
    assert set(_published_kids(client)) == {rotation.old_kid, rotation.new_kid}


def test_token_signed_before_rotation_verifies_through_jwks(client, rotation):
    """A resource server verifying with the JWK Set still accepts a token from before."""
    token = _verify(client, rotation.old_token)
    assert token.header["kid"] == rotation.old_kid
    assert token.claims["client_id"] == rotation.key.key


def test_token_signed_before_rotation_still_introspects_active(client, rotation):
    """Rotation is not revocation: the server itself still accepts the old token."""
    response = client.post(
        "/oauth/introspect",
        data={"token": rotation.old_token},
        headers=basic_auth(rotation.key.key, rotation.key.secret),
    )
    assert response.status_code == 200
    assert response.get_json()["active"] is True


def test_token_issued_after_rotation_carries_new_kid(client, rotation):
    """Every worker signs with the new key once its key ring is reloaded."""
    token = _verify(client, _token(client, rotation.key))
    assert token.header["kid"] == rotation.new_kid


def test_api_key_created_after_rotation_gets_token_with_new_kid(app, make, client, rotation):
    """The token handed out with a new API key is signed by the new key too."""
    key = make.api_key("general")
    assert _verify(client, key.body["token"]).header["kid"] == rotation.new_kid


def _retire_back(app, kid: str, seconds_ago: float) -> None:
    with app.app_context():
        row = db.session.get(SigningKey, kid)
        row.retired_at = utcnow() - timedelta(seconds=seconds_ago)
        db.session.commit()
        keyring().invalidate()


def test_key_retired_longer_than_max_token_lifetime_is_not_published(app, client, rotation):
    """Every token it signed has expired, so it is dropped from the JWK Set."""
    _retire_back(app, rotation.old_kid, app.config["FHIRGATE_API_KEY_TOKEN_TTL_MAX"] + RELOAD_SECONDS + 60)
    assert _published_kids(client) == [rotation.new_kid]


def test_key_retired_within_max_token_lifetime_is_still_published(app, client, rotation):
    """A token may live up to FHIRGATE_API_KEY_TOKEN_TTL_MAX after a stale worker (one that
    has not reloaded its key ring for up to RELOAD_SECONDS) last signed with the key."""
    _retire_back(app, rotation.old_kid, app.config["FHIRGATE_API_KEY_TOKEN_TTL_MAX"] + RELOAD_SECONDS - 5)
    assert set(_published_kids(client)) == {rotation.old_kid, rotation.new_kid}


def _der(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_private_key_column_is_encrypted(app, rotation):
    """The stored blob of each key, old and new, contains neither its DER nor its scalar."""
    with app.app_context():
        new_kid, new_private_key = keyring().signing_key()
        assert new_kid == rotation.new_kid
        for kid, private_key in ((rotation.old_kid, rotation.old_private_key), (new_kid, new_private_key)):
            blob = bytes(db.session.get(SigningKey, kid).private_key_encrypted)
            assert blob
            assert _der(private_key) not in blob
            assert private_key.private_numbers().private_value.to_bytes(32, "big") not in blob


def test_rotation_also_rotates_the_id_token_key_and_keeps_the_old_one_published(app, client, rotation):
    rsa = [jwk for jwk in _published(client)["keys"] if jwk["alg"] == "RS256"]
    assert len(rsa) == 1 and rsa[0]["kid"] in rotation.output and "d" not in rsa[0]
    _rotate(app)
    assert len([jwk for jwk in _published(client)["keys"] if jwk["alg"] == "RS256"]) == 2
