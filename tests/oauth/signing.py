"""Client-side keys and assertions for private_key_jwt tests, made with joserfc, not with
fhirgate's own code, so that the server is checked against an independent implementation."""

from __future__ import annotations

import base64
import time
import uuid
import warnings

import orjson
from joserfc import jws, jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tests.conftest import BASE_URL

TOKEN_URL = f"{BASE_URL}/oauth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_KEY_MAKERS = {
    "RS256": lambda: RSAKey.generate_key(2048),
    "RS384": lambda: RSAKey.generate_key(2048),
    "PS384": lambda: RSAKey.generate_key(2048),
    "ES256": lambda: ECKey.generate_key("P-256"),
    "ES384": lambda: ECKey.generate_key("P-384"),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
}


class ClientKey:
    """A generated key pair with a ``kid`` that signs client assertions with one algorithm."""

    def __init__(self, alg: str = "ES384", kid: str | None = None):
        self.alg = alg
        self.kid = kid or uuid.uuid4().hex[:16]
        self.key = _KEY_MAKERS[alg]()

    @property
    def public_jwk(self) -> dict:
        return {**self.key.as_dict(private=False), "kid": self.kid}

    def jwks(self) -> dict:
        return {"keys": [self.public_jwk]}

    def claims(self, client_id: str, **changes) -> dict:
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": TOKEN_URL,
            "exp": now + 240,
            "jti": uuid.uuid4().hex,
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def assertion(self, client_id: str, header: dict | None = None, **changes) -> str:
        header = {"alg": self.alg, "kid": self.kid, "typ": "JWT", **(header or {})}
        header = {name: value for name, value in header.items() if value is not None}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc warns that RFC 9864 renames EdDSA
            return jwt.encode(header, self.claims(client_id, **changes), self.key, algorithms=[header["alg"]])

    def sign_raw(self, header: dict, payload: bytes) -> str:
        """Sign any header, even one joserfc (rightly) refuses to write, such as ``crit``."""
        signing_input = f"{_b64(orjson.dumps(header))}.{_b64(payload)}"
        algorithm = jws.JWSRegistry.algorithms[header["alg"]]
        return f"{signing_input}.{_b64(algorithm.sign(signing_input.encode(), self.key))}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion_form(assertion: str, **extra) -> dict:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }
