"""An application's integration key carried inside its access tokens, sealed under a short-lived
server key, so that a token from a secret-authenticated request reaches its EHRs without the
secret on every call — and the key dies with the token.

A server key seals keys for ``ISSUE_S`` (an hour), is kept while a token sealed with it may still
live (``max_token_lifetime``), and is then deleted: a token's ``ik`` claim opens nothing after
that, whoever holds the token, ``SECRET_KEY`` or ``FHIRGATE_KEK``. The server keys are stored
under ``FHIRGATE_KEK`` (every worker must open them) and kept in each worker's memory once read.
Each sealed key is bound to its token's ``jti`` (AES-GCM associated data), so a claim moved into
another token does not open.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
from datetime import timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import delete

from app.extensions import db
from app.integrations.models import IntegrationTokenKey
from app.timeutil import as_utc, utcnow
from oauth.keys import max_token_lifetime

ISSUE_S = 3600
NONCE = 12


def _kek_cipher(kek: str) -> AESGCM:
    return AESGCM(
        HKDF(hashes.SHA256(), 32, salt=None, info=b"fhirgate integration token keys v1").derive(kek.encode())
    )


class TokenKeys:
    """Per worker: the server key sealing now, and every key read (by ``kid``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[str, AESGCM, float] | None = None  # kid, cipher, until (epoch seconds)
        self._known: dict[str, tuple[AESGCM | None, float]] = {}  # kid → cipher, until

    def seal(self, integration_key: bytes, jti: str) -> str:
        kid, cipher = self._sealing_key()
        nonce = os.urandom(NONCE)
        sealed = nonce + cipher.encrypt(nonce, integration_key, jti.encode())
        return f"{kid}.{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}"

    def open(self, claim: object, jti: str) -> bytes | None:
        """The integration key in a token's ``ik`` claim, or None (gone, forged, moved)."""
        if not isinstance(claim, str) or claim.count(".") != 1 or len(claim) > 200:
            return None
        kid, _, text = claim.partition(".")
        cipher = self._cipher(kid)
        if cipher is None:
            return None
        try:
            sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return cipher.decrypt(sealed[:NONCE], sealed[NONCE:], jti.encode())
        except (ValueError, InvalidTag):
            return None

    def _sealing_key(self) -> tuple[str, AESGCM]:
        now = utcnow()
        with self._lock:
            if self._current is not None and self._current[2] > now.timestamp():
                return self._current[0], self._current[1]
        config = current_app.config
        kek = _kek_cipher(config["FHIRGATE_KEK"])
        # One statement's transaction of its own: the token request's session is not touched.
        with db.engine.begin() as connection:
            table = IntegrationTokenKey.__table__
            connection.execute(delete(table).where(table.c.expires_at <= now))
            row = connection.execute(
                table.select()
                .where(table.c.created_at > now - timedelta(seconds=ISSUE_S))
                .order_by(table.c.created_at.desc())
                .limit(1)
            ).first()
            if row is None:
                kid, key = secrets.token_urlsafe(12), AESGCM.generate_key(256)
                nonce = os.urandom(NONCE)
                created = now
                connection.execute(
                    table.insert().values(
                        kid=kid,
                        sealed=nonce + kek.encrypt(nonce, key, kid.encode()),
                        created_at=created,
                        expires_at=now + timedelta(seconds=ISSUE_S + max_token_lifetime(config)),
                    )
                )
            else:
                kid, created = row.kid, as_utc(row.created_at)
                key = kek.decrypt(row.sealed[:NONCE], row.sealed[NONCE:], kid.encode())
        cipher = AESGCM(key)
        until = created + timedelta(seconds=ISSUE_S + max_token_lifetime(config))
        with self._lock:
            self._current = (kid, cipher, (created + timedelta(seconds=ISSUE_S)).timestamp())
            self._known[kid] = (cipher, until.timestamp())
        return kid, cipher

    def _cipher(self, kid: str) -> AESGCM | None:
        now = utcnow().timestamp()
        with self._lock:
            known = self._known.get(kid)
        if known is not None and known[1] > now:
            return known[0]  # (None: no such key; asked again after a minute)
        row = db.session.get(IntegrationTokenKey, kid) if len(kid) <= 24 else None
        cipher, until = None, now + 60
        if row is not None and as_utc(row.expires_at).timestamp() > now:
            kek = _kek_cipher(current_app.config["FHIRGATE_KEK"])
            cipher = AESGCM(kek.decrypt(row.sealed[:NONCE], row.sealed[NONCE:], kid.encode()))
            until = as_utc(row.expires_at).timestamp()
        with self._lock:
            if len(self._known) > 1000:
                self._known = {}
            self._known[kid] = (cipher, until)
        return cipher


def token_keys() -> TokenKeys:
    return current_app.extensions["fhirgate_token_keys"]
