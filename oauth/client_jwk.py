"""Clients' public keys (RFC 7517 JWK Sets) and signature checks with them.

Only public keys of the kinds SMART Backend Services names are imported (RSA of 2048 to
8192 bits, EC on P-256/P-384/P-521, Ed25519). Each key accepts only the algorithms of its
type — RS* and PS* for RSA, the one ECDSA algorithm of its curve (RFC 7518 §3.4), EdDSA for
Ed25519 — narrowed to one by the key's ``alg`` member when it has one; so a signature can
never be checked with a key of another kind: an HS256 token "signed" with a public key has
no key to be checked with.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from oauth.jws import JwsError, b64url_decode

MAX_JWKS_BYTES = 64 * 1024
MAX_KEYS = 20
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192  # larger keys only make each check slower
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
# Curve name -> (curve, its one ECDSA algorithm, bytes of r and of s in a JWS signature).
_CURVES = {
    "P-256": (ec.SECP256R1, "ES256", 32),
    "P-384": (ec.SECP384R1, "ES384", 48),
    "P-521": (ec.SECP521R1, "ES512", 66),
}

# What the token endpoint accepts in a client assertion, strongest-recommended first.
ASSERTION_ALGORITHMS = (
    "RS384",
    "ES384",
    "RS256",
    "ES256",
    "EdDSA",
    "Ed25519",
    "RS512",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
)


class JwksError(ValueError):
    """A JWK Set that cannot be registered; the message says why and is safe to show."""


@dataclass(frozen=True)
class PublicKey:
    kid: str | None
    algorithms: frozenset[str]
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey
    coordinate_bytes: int = 0  # ECDSA only: the size of r and s in the JWS signature

    def verify(self, alg: str, signature: bytes, signing_input: bytes) -> bool:
        if alg not in self.algorithms:
            return False
        try:
            if alg in ("EdDSA", "Ed25519"):
                self.key.verify(signature, signing_input)
            elif alg.startswith("ES"):
                if len(signature) != 2 * self.coordinate_bytes:
                    return False
                n = self.coordinate_bytes
                der = encode_dss_signature(
                    int.from_bytes(signature[:n], "big"), int.from_bytes(signature[n:], "big")
                )
                self.key.verify(der, signing_input, ec.ECDSA(_HASHES[alg[2:]]()))
            elif alg.startswith("PS"):
                digest = _HASHES[alg[2:]]()
                pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
                self.key.verify(signature, signing_input, pss, digest)
            else:
                self.key.verify(signature, signing_input, padding.PKCS1v15(), _HASHES[alg[2:]]())
        except InvalidSignature:
            return False
        return True


def _integer(jwk: dict, member: str) -> int:
    value = jwk.get(member)
    if not isinstance(value, str) or not value:
        raise JwksError(f"a key lacks its '{member}' member")
    try:
        return int.from_bytes(b64url_decode(value), "big")
    except JwsError:
        raise JwksError(f"a key's '{member}' member is not base64url") from None


def _import_key(jwk: dict) -> PublicKey:
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        raise JwksError("a key contains private or symmetric key material: register public keys only")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= 200):
        raise JwksError("a key's 'kid' must be a string of 1 to 200 characters")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise JwksError("a key's 'use' must be 'sig'")
    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            key = rsa.RSAPublicNumbers(_integer(jwk, "e"), _integer(jwk, "n")).public_key()
            if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
                raise JwksError(f"RSA keys need at least {MIN_RSA_BITS} and at most {MAX_RSA_BITS} bits")
            algorithms = {f"{family}{size}" for family in ("RS", "PS") for size in _HASHES}
            return PublicKey(kid, _restricted(jwk, algorithms), key)
        if kty == "EC":
            curve = _CURVES.get(jwk.get("crv"))
            if curve is None:
                raise JwksError("EC keys must be on P-256, P-384 or P-521")
            curve_class, alg, size = curve
            numbers = ec.EllipticCurvePublicNumbers(_integer(jwk, "x"), _integer(jwk, "y"), curve_class())
            return PublicKey(kid, _restricted(jwk, {alg}), numbers.public_key(), size)
        if kty == "OKP":
            if jwk.get("crv") != "Ed25519":
                raise JwksError("OKP keys must be Ed25519")
            key = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk.get("x") or ""))
            return PublicKey(kid, _restricted(jwk, {"EdDSA", "Ed25519"}), key)
    except (ValueError, TypeError) as error:
        if isinstance(error, JwksError):
            raise
        raise JwksError(f"a {kty} key is not a valid public key") from None
    raise JwksError("each key's 'kty' must be RSA, EC or OKP")


def _restricted(jwk: dict, algorithms: set[str]) -> frozenset[str]:
    """A key's ``alg`` member, when present, narrows it to that one algorithm."""
    alg = jwk.get("alg")
    if alg is None:
        return frozenset(algorithms)
    if alg not in algorithms:
        raise JwksError("a key's 'alg' does not fit its key type")
    return frozenset({alg})


@dataclass(frozen=True)
class ClientKeys:
    keys: tuple[PublicKey, ...]

    def for_header(self, kid: str | None, alg: str) -> PublicKey | None:
        """The key a JWS header names; without a ``kid``, the set's only key for ``alg``."""
        if kid is not None:
            return next((key for key in self.keys if key.kid == kid and alg in key.algorithms), None)
        fitting = [key for key in self.keys if alg in key.algorithms]
        return fitting[0] if len(fitting) == 1 else None

    def has_kid(self, kid: str | None) -> bool:
        return any(key.kid == kid for key in self.keys)


def _loaded(value: object) -> object:
    """The JWK Set as JSON values, at most ``MAX_JWKS_BYTES`` as text."""
    try:
        text = value if isinstance(value, (str, bytes)) else orjson.dumps(value)
    except orjson.JSONEncodeError:  # lone surrogates, integers beyond 64 bits, deep nesting
        raise JwksError("the key set holds values that are not storable JSON") from None
    if len(text) > MAX_JWKS_BYTES:
        raise JwksError(f"the key set is larger than {MAX_JWKS_BYTES // 1024} KiB")
    if not isinstance(value, (str, bytes)):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise JwksError("the key set is not JSON") from None


def parse_jwks(value: object, *, skip_unusable: bool = False) -> ClientKeys:
    """Check and import a JWK Set given as a dict or JSON text; raise ``JwksError``.

    A set registered here must be entirely usable; a set published at a ``jwks_uri`` may
    also carry keys for other purposes, so there ``skip_unusable`` keeps the usable ones.
    """
    value = _loaded(value)
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise JwksError("a JWK Set is a JSON object with a 'keys' array")
    entries = value["keys"]
    if not entries:
        raise JwksError("the key set has no keys")
    if len(entries) > MAX_KEYS:
        raise JwksError(f"the key set has more than {MAX_KEYS} keys")
    if not all(isinstance(entry, dict) for entry in entries):
        raise JwksError("every key must be a JSON object")
    keys = []
    for entry in entries:
        try:
            keys.append(_import_key(entry))
        except JwksError:
            if not skip_unusable:
                raise
    if not keys:
        raise JwksError("the key set has no usable signing key")
    kids = [key.kid for key in keys if key.kid is not None]
    if len(kids) != len(set(kids)):
        raise JwksError("two keys share a 'kid'")
    return ClientKeys(tuple(keys))


def public_jwks_json(value: object) -> str:
    """The JWK Set (a dict or JSON text) as stored: checked first, keys kept as written."""
    value = _loaded(value)
    parse_jwks(value)
    return orjson.dumps({"keys": value["keys"]}).decode()
