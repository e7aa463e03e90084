"""Clients' JWK Sets fetched from their ``jwks_uri``: public addresses only, bounded, cached.

The host name is resolved once, every address is checked, and the connection goes to a
checked address (with the name kept for TLS), so a DNS answer cannot swap in an internal
address between the check and the connect. Responses are cached for as long as their
``Cache-Control`` says (within bounds); an assertion naming a ``kid`` the cached set lacks
fetches the set again, at most once per ``UNKNOWN_KID_REFETCH_S`` for a URI.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from oauth.client_jwk import MAX_JWKS_BYTES, ClientKeys, JwksError, parse_jwks

TIMEOUT_S = 3.0
DEFAULT_TTL_S = 300
MAX_TTL_S = 24 * 3600
UNKNOWN_KID_REFETCH_S = 1.0
MAX_URI_LENGTH = 2048
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d{1,10})", re.IGNORECASE)


class JwksFetchError(Exception):
    """The key set could not be fetched; the message is for the client's developer."""


def jwks_uri_problem(uri: object, *, local_ok: bool) -> str | None:
    """What is wrong with a ``jwks_uri`` a client registers, or None (no network use)."""
    if not isinstance(uri, str) or not 0 < len(uri) <= MAX_URI_LENGTH or not uri.isprintable():
        return f"must be a URL of at most {MAX_URI_LENGTH} characters."
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "is not a valid URL."
    if parts.scheme != "https" and not (local_ok and parts.scheme == "http"):
        return "must use https."
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        return "must be an absolute URL with a host, no user information and no fragment."
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None if local_ok or parts.hostname != "localhost" else "must not point at this machine."
    if not local_ok and not address.is_global:
        return "must not be a loopback, private or link-local address."
    return None


def _addresses(host: str, port: int, local_ok: bool) -> list[tuple]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise JwksFetchError("the jwks_uri host name does not resolve") from None
    if not infos:
        raise JwksFetchError("the jwks_uri host name does not resolve")
    if not local_ok:
        for info in infos:
            if not ipaddress.ip_address(info[4][0].split("%")[0]).is_global:
                raise JwksFetchError("the jwks_uri resolves to a loopback, private or link-local address")
    return infos


def _connect(parts, local_ok: bool, deadline: float) -> http.client.HTTPConnection:
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    last_error = None
    for family, kind, proto, _, sockaddr in _addresses(parts.hostname, port, local_ok):
        sock = socket.socket(family, kind, proto)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            sock.connect(sockaddr)
            if https:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        except OSError as error:
            sock.close()
            last_error = error
            continue
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=TIMEOUT_S)
        connection.sock = sock
        return connection
    if isinstance(last_error, ssl.SSLError):
        raise JwksFetchError("the TLS handshake with the jwks_uri host failed")
    raise JwksFetchError("the jwks_uri host refused the connection or did not answer in time")


def _lifetime(response: http.client.HTTPResponse) -> float:
    """Seconds the answer may be reused, from Cache-Control or Expires (RFC 9111 §4.2.1)."""
    control = response.getheader("Cache-Control", "")
    if re.search(r"no-store|no-cache", control, re.IGNORECASE):
        return 0
    if match := _MAX_AGE.search(control):
        return min(int(match.group(1)), MAX_TTL_S)
    expires = response.getheader("Expires")
    if expires:
        try:
            remaining = parsedate_to_datetime(expires).timestamp() - time.time()
        except (TypeError, ValueError):
            return 0
        return max(0.0, min(remaining, MAX_TTL_S))
    return DEFAULT_TTL_S


def fetch_jwks(uri: str, *, local_ok: bool) -> tuple[ClientKeys, float]:
    """GET the key set at ``uri``; return it with its cache lifetime in seconds."""
    if problem := jwks_uri_problem(uri, local_ok=local_ok):
        raise JwksFetchError(f"the jwks_uri {problem}")
    parts = urlsplit(uri)
    deadline = time.monotonic() + TIMEOUT_S
    connection = _connect(parts, local_ok, deadline)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers={"Accept": "application/json, application/jwk-set+json"})
        response = connection.getresponse()
        if response.status != 200:
            raise JwksFetchError(f"the jwks_uri answered HTTP {response.status}")
        body = bytearray()
        while len(body) <= MAX_JWKS_BYTES:
            if time.monotonic() > deadline:
                raise JwksFetchError("the jwks_uri did not answer in time")
            chunk = response.read1(16384)
            if not chunk:
                break
            body += chunk
        if len(body) > MAX_JWKS_BYTES:
            raise JwksFetchError(f"the key set at the jwks_uri is larger than {MAX_JWKS_BYTES // 1024} KiB")
        lifetime = _lifetime(response)
    except (OSError, http.client.HTTPException):
        raise JwksFetchError("the jwks_uri connection failed or timed out") from None
    finally:
        connection.close()
    try:
        return parse_jwks(bytes(body), skip_unusable=True), lifetime
    except JwksError as error:
        raise JwksFetchError(f"the key set at the jwks_uri is not usable: {error}") from None


@dataclass
class _Cached:
    keys: ClientKeys
    fetched: float
    expires: float


class JwksCache:
    """Per-process cache of fetched key sets, keyed by URI."""

    def __init__(self, fetch=fetch_jwks):
        self._fetch = fetch
        self._entries: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def keys(self, uri: str, *, local_ok: bool, kid: str | None) -> ClientKeys:
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(uri)
        if cached is not None and now < cached.expires:
            just_fetched = now - cached.fetched < UNKNOWN_KID_REFETCH_S
            if kid is None or just_fetched or cached.keys.has_kid(kid):
                return cached.keys
        keys, lifetime = self._fetch(uri, local_ok=local_ok)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[uri] = _Cached(keys, now, now + lifetime)
        return keys
