"""An application's EHR credentials, sealed under a key only its client secret opens.

The key is HKDF-SHA256 of the client secret with the application's salt (``IntegrationSalt``)
and its own ``info``; the stored secret hash is HMAC-SHA256 under a pepper from ``SECRET_KEY``
(``oauth.credentials``), an unrelated derivation, so neither the table nor the server's keys
give the key. The credentials' JSON is AES-256-GCM under it, bound (as associated data) to the
application and the hospital, so a sealed blob copied to another row does not open.

Client secrets are 256-bit random (or at least 32 characters the developer chose): a fast
derivation protects them as well as a slow one would, and a request may bring the secret each
time (``X-Client-Secret``) at the cost of one HKDF (~10 us), not a password hash's 50 ms.
"""

from __future__ import annotations

import os
from functools import lru_cache

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SALT_BYTES = 32
NONCE_BYTES = 12
_INFO = b"fhirgate integration credentials v1"
_TEST_INFO = b"fhirgate operator test credentials v1"


class Unopenable(Exception):
    """The sealed credentials do not open with this key: a wrong secret, or another row's."""


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


def integration_key(client_secret: str, salt: bytes) -> bytes:
    """The application's 256-bit integration key; never stored."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(client_secret.encode())


# scrypt for a passphrase a person chose (a client secret is random: HKDF suffices for it):
# 2^15 x 8 x 128 bytes = 32 MiB and ~0.1 s a derivation, so that a dump cannot be tried
# quickly; a worker keeps the keys it derived (``gateway``), not the passphrases.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_CHECK = {"check": "fhirgate integration passphrase"}


def passphrase_key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.encode())


@lru_cache(maxsize=1024)
def remembered_passphrase_key(passphrase: str, salt: bytes) -> bytes:
    """``passphrase_key``, kept by the worker: a request that brings the passphrase derives its
    key once, not at 0.1 s a request (the worker's memory is not what a dump holds)."""
    return passphrase_key(passphrase, salt)


def passphrase_check(key: bytes, client_id: str) -> bytes:
    """What tells the passphrase's key from another: a known text sealed under it."""
    return seal(key, client_id, "passphrase check", _CHECK)  # (no hospital id has a space)


def passphrase_matches(key: bytes, client_id: str, check: bytes) -> bool:
    try:
        return unseal(key, client_id, "passphrase check", check) == _CHECK
    except Unopenable:
        return False


def _context(client_id: str, hospital_id: str) -> bytes:
    return b"\x00".join((b"integration", client_id.encode(), hospital_id.encode()))


def seal(key: bytes, client_id: str, hospital_id: str, credentials: dict[str, str]) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, orjson.dumps(credentials), _context(client_id, hospital_id))


def unseal(key: bytes, client_id: str, hospital_id: str, sealed: bytes) -> dict[str, str]:
    try:
        plain = AESGCM(key).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _context(client_id, hospital_id)
        )
    except (InvalidTag, ValueError):
        raise Unopenable from None
    return orjson.loads(plain)


def _operator_key(kek: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_TEST_INFO).derive(kek.encode())


def seal_test_credentials(kek: str, hospital_id: str, credentials: dict[str, str]) -> bytes:
    """The operator's test credentials of a connected hospital, under ``FHIRGATE_KEK``."""
    return seal(_operator_key(kek), "operator", hospital_id, credentials)


def unseal_test_credentials(kek: str, hospital_id: str, sealed: bytes) -> dict[str, str]:
    return unseal(_operator_key(kek), "operator", hospital_id, sealed)
