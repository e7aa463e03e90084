"""Token signing keys: creation, rotation, encryption at rest, an in-memory key ring, JWKS.

Private keys are stored AES-256-GCM encrypted under a key derived from ``FHIRGATE_KEK``
(HKDF-SHA256), with the ``kid`` as associated data so that ciphertexts cannot be swapped
between rows. Each worker keeps the decrypted current key in memory and re-reads the table
at most every ``RELOAD_SECONDS`` (sooner when a token names an unknown ``kid``), so a
rotation reaches every worker within that time.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.extensions import db
from app.timeutil import as_utc, utcnow
from oauth.jws import ALGORITHM, b64url_decode, b64url_encode
from oauth.models import SigningKey

RELOAD_SECONDS = 30.0
ID_TOKEN_ALGORITHM = "RS256"
RSA_KEY_BITS = 2048
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
UNKNOWN_KID_RELOAD_SECONDS = 2.0


@lru_cache(maxsize=4)
def _kek_cipher(kek: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"fhirgate signing-key encryption v1"
    ).derive(kek.encode())
    return AESGCM(key)


def _encrypt_private_key(private_key: PrivateKey, kid: str, kek: str) -> bytes:
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    nonce = os.urandom(12)
    return nonce + _kek_cipher(kek).encrypt(nonce, der, kid.encode())


def _decrypt_private_key(blob: bytes, kid: str, kek: str) -> PrivateKey:
    der = _kek_cipher(kek).decrypt(blob[:12], blob[12:], kid.encode())
    key = serialization.load_der_private_key(der, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return key


def public_jwk(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> dict:
    """The RFC 7517 JWK of a P-256 or RSA public key, ``kid`` set to its RFC 7638 thumbprint."""
    numbers = public_key.public_numbers()
    if isinstance(public_key, rsa.RSAPublicKey):
        jwk = {
            "e": b64url_encode(_unsigned(numbers.e)),
            "kty": "RSA",
            "n": b64url_encode(_unsigned(numbers.n)),
        }
        alg = ID_TOKEN_ALGORITHM
    else:
        jwk = {
            "crv": "P-256",
            "kty": "EC",
            "x": b64url_encode(numbers.x.to_bytes(32, "big")),
            "y": b64url_encode(numbers.y.to_bytes(32, "big")),
        }
        alg = ALGORITHM
    thumbprint = hashlib.sha256(orjson.dumps(jwk, option=orjson.OPT_SORT_KEYS)).digest()
    return {**jwk, "kid": b64url_encode(thumbprint), "use": "sig", "alg": alg}


def _unsigned(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def create_signing_key(session: Session | None = None, alg: str = ALGORITHM) -> SigningKey:
    """Add a new current signing key for ``alg`` (ES256: access tokens; RS256: ID tokens and the
    access tokens of applications that registered RS256) and
    retire the previous ones of that algorithm; the caller commits."""
    session = session or db.session
    if alg == ID_TOKEN_ALGORITHM:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    else:
        private_key = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk(private_key.public_key())
    now = utcnow()
    current = select(SigningKey).where(SigningKey.retired_at.is_(None), SigningKey.alg == alg)
    for row in session.scalars(current):
        row.retired_at = now
    row = SigningKey(
        kid=jwk["kid"],
        alg=alg,
        public_jwk=orjson.dumps(jwk).decode(),
        private_key_encrypted=_encrypt_private_key(
            private_key, jwk["kid"], current_app.config["FHIRGATE_KEK"]
        ),
        created_at=now,
    )
    session.add(row)
    return row


def max_token_lifetime(config) -> int:
    return max(config["FHIRGATE_TOKEN_TTL"], config["FHIRGATE_API_KEY_TOKEN_TTL_MAX"])


@dataclass
class _Snapshot:
    current_kid: str | None
    current_key: ec.EllipticCurvePrivateKey | None
    # Every published key: ES256 ones, and the RSA ones of ID tokens and of RS256 access tokens
    # (an ID token is never accepted as an access token: its ``typ`` differs).
    public_keys: dict[str, ec.EllipticCurvePublicKey | rsa.RSAPublicKey]
    jwks: list[dict]
    loaded_at: float
    id_token_kid: str | None = None
    id_token_key: rsa.RSAPrivateKey | None = None


def _young(snapshot: _Snapshot | None, max_age: float) -> bool:
    return snapshot is not None and time.monotonic() - snapshot.loaded_at <= max_age


class KeyRing:
    """The signing keys of one worker process, re-read from the database now and then."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def invalidate(self) -> None:
        self._snapshot = None

    def _load(self) -> _Snapshot:
        config = current_app.config
        # A worker that has not reloaded yet may sign with a retired key for up to
        # RELOAD_SECONDS after the rotation: keep publishing it that much longer.
        oldest_needed = utcnow() - timedelta(seconds=max_token_lifetime(config) + RELOAD_SECONDS)
        current_kid, current_key = None, None
        id_token_kid, id_token_key = None, None
        public_keys, jwks = {}, []
        # A session of its own: the caller's transaction may hold uncommitted work.
        with Session(db.engine) as session:
            rows = list(session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())))
        for row in rows:
            retired = as_utc(row.retired_at)
            if retired is not None and retired < oldest_needed:
                continue  # every token it signed has expired
            jwk = orjson.loads(row.public_jwk)
            jwks.append(jwk)
            if row.alg == ID_TOKEN_ALGORITHM:
                if retired is None and id_token_kid is None:
                    id_token_kid = row.kid
                    id_token_key = _decrypt_private_key(
                        row.private_key_encrypted, row.kid, config["FHIRGATE_KEK"]
                    )
                public_keys[row.kid] = rsa.RSAPublicNumbers(
                    int.from_bytes(b64url_decode(jwk["e"]), "big"),
                    int.from_bytes(b64url_decode(jwk["n"]), "big"),
                ).public_key()
                continue
            public_keys[row.kid] = ec.EllipticCurvePublicNumbers(
                int.from_bytes(b64url_decode(jwk["x"]), "big"),
                int.from_bytes(b64url_decode(jwk["y"]), "big"),
                ec.SECP256R1(),
            ).public_key()
            if retired is None and current_kid is None:
                current_kid = row.kid
                current_key = _decrypt_private_key(row.private_key_encrypted, row.kid, config["FHIRGATE_KEK"])
        return _Snapshot(
            current_kid, current_key, public_keys, jwks, time.monotonic(), id_token_kid, id_token_key
        )

    def _fresh(self, max_age: float = RELOAD_SECONDS) -> _Snapshot:
        snapshot = self._snapshot
        if not _young(snapshot, max_age):
            with self._lock:
                snapshot = self._snapshot
                if not _young(snapshot, max_age):
                    snapshot = self._snapshot = self._load()
        return snapshot

    def signing_key(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        """The current key, created on first use if the server has none yet."""
        snapshot = self._fresh()
        if snapshot.current_key is None:
            with self._lock, Session(db.engine) as session:
                create_signing_key(session)
                session.commit()
                self._snapshot = None
            snapshot = self._fresh()
        return snapshot.current_kid, snapshot.current_key

    def id_token_signing_key(self) -> tuple[str, rsa.RSAPrivateKey]:
        """The current RS256 key for ID tokens (OpenID Connect's default algorithm), created on
        first use."""
        snapshot = self._fresh()
        if snapshot.id_token_key is None:
            with self._lock, Session(db.engine) as session:
                create_signing_key(session, ID_TOKEN_ALGORITHM)
                session.commit()
                self._snapshot = None
            snapshot = self._fresh()
        return snapshot.id_token_kid, snapshot.id_token_key

    def loaded_signing_key(self) -> tuple[str, ec.EllipticCurvePrivateKey] | None:
        """``signing_key`` if it is loaded and not due to be re-read, else None (loading
        needs an application context: the caller then takes the ordinary way)."""
        snapshot = self._snapshot
        if not _young(snapshot, RELOAD_SECONDS) or snapshot.current_key is None:
            return None
        return snapshot.current_kid, snapshot.current_key

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        snapshot = self._fresh()
        key = snapshot.public_keys.get(kid)
        if key is None and time.monotonic() - snapshot.loaded_at > UNKNOWN_KID_RELOAD_SECONDS:
            key = self._fresh(max_age=0).public_keys.get(kid)
        return key

    def jwks(self) -> dict:
        """The public keys, read afresh: a key another worker just made must be published
        at once. A server that has none yet makes its first one now."""
        if self._fresh(max_age=0).current_key is None:
            self.signing_key()
        return {"keys": self._fresh(max_age=0).jwks}


def init_keyring(app: Flask) -> None:
    app.extensions["fhirgate_keyring"] = KeyRing()


def keyring() -> KeyRing:
    return current_app.extensions["fhirgate_keyring"]
