"""How fhirgate authenticates to an upstream EHR with an application's opened credentials.

A static bearer token or API key goes in its header as it is. For client credentials and SMART
Backend Services an upstream access token is asked for once and kept, per worker, until shortly
before it expires: one token request per lifetime, not per call. The cache is keyed by the
sealed credentials themselves (their SHA-256), so credentials entered again never reuse a token
of the old ones, and it is consulted only after the request's key has opened them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from app.integrations.models import API_KEY, BACKEND_SERVICES, BEARER_TOKEN, CLIENT_SECRET
from app.integrations.upstream_http import UpstreamFailure, UpstreamHttp
from oauth.jws import b64url_encode

ASSERTION_LIFETIME_S = 300  # SMART Backend Services: at most five minutes
DEFAULT_TOKEN_LIFETIME_S = 300  # an upstream that does not say
EXPIRY_MARGIN_S = 30  # renewed this long before the upstream's expiry
MAX_TOKEN_ANSWER = 64 * 1024
MAX_CACHED = 10_000
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
Credentials = dict[str, str]


class UpstreamRefusal(Exception):
    """The upstream's token endpoint refused the application's credentials (told as a 401/403
    from the upstream, never with the credentials)."""


@dataclass(frozen=True)
class Upstream:
    """What a request needs of a connected hospital's registration (a detached copy)."""

    hospital_id: str
    base_url: str
    auth_kind: str
    token_url: str | None
    api_key_header: str | None
    scope: str


class UpstreamTokens:
    """Upstream access tokens, per worker, keyed by the sealed credentials they came from."""

    def __init__(self, http: UpstreamHttp):
        self.http = http
        self._tokens: dict[bytes, tuple[str, float]] = {}
        self._asking: dict[bytes, threading.Lock] = {}
        self._lock = threading.Lock()
        self.requested = 0  # token requests sent (the tests count them)

    def headers(
        self,
        upstream: Upstream,
        credentials: Credentials,
        sealed_id: bytes,
        *,
        timeout_s: float,
        local_ok: bool,
    ) -> dict[str, str]:
        """The headers that authenticate a request to the upstream (``local_ok``: as
        ``UpstreamHttp.request``, for the token request)."""
        if upstream.auth_kind == BEARER_TOKEN:
            return {"Authorization": f"Bearer {credentials['access_token']}"}
        if upstream.auth_kind == API_KEY:
            return {upstream.api_key_header or "X-API-Key": credentials["api_key"]}
        token = self.token(upstream, credentials, sealed_id, timeout_s=timeout_s, local_ok=local_ok)
        return {"Authorization": f"Bearer {token}"}

    def token(
        self,
        upstream: Upstream,
        credentials: Credentials,
        sealed_id: bytes,
        *,
        timeout_s: float,
        local_ok: bool,
    ) -> str:
        key = _cache_key(upstream, sealed_id)
        with self._lock:
            cached = self._tokens.get(key)
            asking = self._asking.setdefault(key, threading.Lock())
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        # One request per credentials at a time: the worker's other threads wait for its token
        # rather than ask for their own (the bound of each wait is the request's deadline).
        waited_since = time.monotonic()
        if not asking.acquire(timeout=max(0.0, timeout_s)):
            raise UpstreamFailure("the upstream's token endpoint did not answer in time", timeout=True)
        timeout_s -= time.monotonic() - waited_since  # the wait counts against the request's bound
        try:
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            token, lifetime = self._request(upstream, credentials, timeout_s, local_ok)
            with self._lock:
                if len(self._tokens) >= MAX_CACHED:
                    self._tokens, self._asking = {}, {key: asking}
                self._tokens[key] = (token, time.monotonic() + max(1.0, lifetime - EXPIRY_MARGIN_S))
        finally:
            asking.release()
        return token

    def forget(self, upstream: Upstream, sealed_id: bytes) -> None:
        """The upstream refused a cached token (revoked early): the next call asks again."""
        with self._lock:
            self._tokens.pop(_cache_key(upstream, sealed_id), None)

    def _request(
        self, upstream: Upstream, credentials: Credentials, timeout_s: float, local_ok: bool
    ) -> tuple[str, float]:
        assert upstream.token_url is not None
        form = {"grant_type": "client_credentials", "scope": upstream.scope}
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if upstream.auth_kind == CLIENT_SECRET:
            # RFC 6749 §2.3.1: each part form-encoded before Basic.
            pair = (
                quote(credentials["client_id"], safe="") + ":" + quote(credentials["client_secret"], safe="")
            )
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif upstream.auth_kind == BACKEND_SERVICES:
            form["client_assertion_type"] = JWT_BEARER
            form["client_assertion"] = client_assertion(credentials, upstream.token_url)
        self.requested += 1
        answer = self.http.request(
            "POST",
            upstream.token_url,
            headers=headers,
            body=urlencode(form).encode(),
            timeout_s=timeout_s,
            max_bytes=MAX_TOKEN_ANSWER,
            local_ok=local_ok,
        )
        if answer.status in (400, 401, 403):
            raise UpstreamRefusal(f"the upstream's token endpoint refused the credentials ({answer.status})")
        if answer.status != 200:
            raise UpstreamFailure(f"the upstream's token endpoint answered HTTP {answer.status}")
        try:
            body = orjson.loads(answer.body)
            token = body["access_token"]
            lifetime = float(body.get("expires_in", DEFAULT_TOKEN_LIFETIME_S))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise UpstreamFailure("the upstream's token endpoint answered no usable token") from None
        if not isinstance(token, str) or not token or not token.isprintable() or len(token) > 16_384:
            raise UpstreamFailure("the upstream's token endpoint answered no usable token")
        return token, lifetime


def _cache_key(upstream: Upstream, sealed_id: bytes) -> bytes:
    return hashlib.sha256(upstream.hospital_id.encode() + b"\x00" + sealed_id).digest()


def client_assertion(credentials: Credentials, token_url: str) -> str:
    """A SMART Backend Services assertion: RS384 with an RSA key, ES384 with a P-384 key."""
    key = serialization.load_pem_private_key(credentials["private_key"].encode(), password=None)
    alg = "RS384" if isinstance(key, rsa.RSAPrivateKey) else "ES384"
    header = {"alg": alg, "typ": "JWT"}
    if credentials.get("kid"):
        header["kid"] = credentials["kid"]
    now = int(time.time())
    claims = {
        "iss": credentials["client_id"],
        "sub": credentials["client_id"],
        "aud": token_url,
        "exp": now + ASSERTION_LIFETIME_S,
        "iat": now,
        "jti": secrets.token_urlsafe(24),
    }
    signing_input = b64url_encode(orjson.dumps(header)) + "." + b64url_encode(orjson.dumps(claims))
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA384())
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA384())))
        signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    return signing_input + "." + b64url_encode(signature)
