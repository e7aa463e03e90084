"""Human passwords: argon2id (RFC 9106)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_PASSWORD_LENGTH = 12


def _hasher() -> PasswordHasher:
    hasher = current_app.extensions.get("fhirgate_password_hasher")
    if hasher is None:
        hasher = PasswordHasher(**current_app.config["FHIRGATE_ARGON2"])
        current_app.extensions["fhirgate_password_hasher"] = hasher
    return hasher


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password; with no stored hash, spend the same time and fail."""
    hasher = _hasher()
    if stored_hash is None:
        stored_hash = current_app.extensions.get("fhirgate_dummy_hash")
        if stored_hash is None:
            stored_hash = current_app.extensions["fhirgate_dummy_hash"] = hasher.hash("not a password")
        password = password + "\0"
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
