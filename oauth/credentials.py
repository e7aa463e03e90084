"""Client ids and secrets: generation with kind prefixes, keyed hashing, constant-time checks.

Secrets are 256-bit random strings, so a keyed fast hash (HMAC-SHA256 under a server-side
pepper) protects them at rest as well as a slow password hash would, at ~390,000 checks/s
instead of ~3/s. Human passwords use argon2id instead (``app.passwords``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from flask import current_app

# Prefixes make a leaked value recognisable: what it is and who to call.
CLIENT_ID_PREFIX = {"hospital_key": "hk_", "patient_credential": "pk_", "application": "app_"}
SECRET_PREFIX = {"hospital_key": "hks_", "patient_credential": "pks_", "application": "apps_"}
MIN_GIVEN_SECRET_LENGTH = 32


def new_client_id(kind: str) -> str:
    return CLIENT_ID_PREFIX[kind] + secrets.token_urlsafe(18)


def new_secret(kind: str) -> str:
    return SECRET_PREFIX[kind] + secrets.token_urlsafe(32)


@lru_cache(maxsize=4)
def _pepper(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"fhirgate client-secret pepper v1", hashlib.sha256).digest()


def hash_secret(secret: str) -> str:
    """Return the keyed hash stored in place of a client secret."""
    pepper = _pepper(current_app.config["SECRET_KEY"])
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    """Compare a presented secret with a stored hash in constant time."""
    if not stored_hash:
        # Hash anyway so that a client without a secret costs the same as one with.
        hmac.compare_digest(hash_secret(secret), "0" * 64)
        return False
    return hmac.compare_digest(hash_secret(secret), stored_hash)
