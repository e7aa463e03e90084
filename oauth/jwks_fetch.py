"""Clients' JWK Sets fetched from their ``jwks_uri``: public addresses only, bounded, cached.

The host name is resolved once, every address is checked, and the connection goes to a
checked address (with the name kept for TLS), so a DNS answer cannot swap in an internal
address between the check and the connect. The whole fetch — lookup, connect, TLS, request,
headers, body — ends within ``TIMEOUT_S``. Responses are cached for as long as their
``Cache-Control`` says (within bounds); an assertion naming a ``kid`` the cached set lacks
fetches the set again, at most once per ``UNKNOWN_KID_REFETCH_S`` for a URI; a failure is
remembered for ``FAILURE_TTL_S``.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from oauth.client_jwk import MAX_JWKS_BYTES, ClientKeys, JwksError, parse_jwks

TIMEOUT_S = 3.0
DEFAULT_TTL_S = 300
MAX_TTL_S = 24 * 3600
UNKNOWN_KID_REFETCH_S = 1.0
FAILURE_TTL_S = 30
MAX_URI_LENGTH = 2048
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d{1,10})", re.IGNORECASE)


class JwksFetchError(Exception):
    """The key set could not be fetched; the message is for the client's developer."""


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A globally routable unicast address, also when an IPv6 address carries an IPv4 one
    (mapped, 6to4, NAT64, IPv4-compatible) that would reach an internal host."""
    if address.version == 6:
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and (address in _IPV4_COMPATIBLE or any(address in net for net in _NAT64)):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not address.is_multicast


def jwks_uri_problem(uri: object, *, local_ok: bool) -> str | None:
    """What is wrong with a ``jwks_uri`` a client registers, or None (no network use)."""
    if not isinstance(uri, str) or not 0 < len(uri) <= MAX_URI_LENGTH or not uri.isprintable():
        return f"must be a URL of at most {MAX_URI_LENGTH} characters."
    if not uri.isascii():
        return "must be ASCII (percent-encode other characters; punycode for host names)."
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
    if not local_ok and not is_public(address):
        return "must not be a loopback, private or link-local address."
    return None


# getaddrinfo has no timeout of its own: it runs here, and the fetch stops waiting at its deadline.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jwks-dns")


def _addresses(host: str, port: int, local_ok: bool, deadline: float) -> list[tuple]:
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=max(0.05, deadline - time.monotonic()))
    except TimeoutError:
        raise JwksFetchError("the jwks_uri host name did not resolve in time") from None
    except (OSError, UnicodeError):
        raise JwksFetchError("the jwks_uri host name does not resolve") from None
    if not infos:
        raise JwksFetchError("the jwks_uri host name does not resolve")
    if not local_ok:
        for info in infos:
            if not is_public(ipaddress.ip_address(info[4][0].split("%")[0])):
                raise JwksFetchError("the jwks_uri resolves to a loopback, private or link-local address")
    return infos


class _Deadline:
    """Shuts the connection's socket down when the time is up, whatever call is blocked on it
    (a per-call socket timeout alone lets a server drip one byte at a time for ever)."""

    def __init__(self, seconds: float):
        self.expired = False
        self._sock = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shut()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shut()

    def _shut(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to stop
                self._sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _connect(parts, infos: list[tuple], deadline: _Deadline) -> http.client.HTTPConnection:
    https = parts.scheme == "https"
    last_error = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(TIMEOUT_S)
        deadline.watch(sock)
        try:
            sock.connect(sockaddr)
            if https:
                context = ssl.create_default_context()
                sock = context.wrap_socket(
                    sock, server_hostname=parts.hostname, do_handshake_on_connect=False
                )
                deadline.watch(sock)
                sock.do_handshake()
        except OSError as error:
            sock.close()
            last_error = error
            if deadline.expired:
                break
            continue
        connection = http.client.HTTPConnection(parts.hostname, sockaddr[1], timeout=TIMEOUT_S)
        connection.sock = sock
        return connection
    if isinstance(last_error, ssl.SSLError) and not deadline.expired:
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
    """GET the key set at ``uri``, all within ``TIMEOUT_S``; return it with its cache lifetime."""
    if problem := jwks_uri_problem(uri, local_ok=local_ok):
        raise JwksFetchError(f"the jwks_uri {problem}")
    parts = urlsplit(uri)
    started = time.monotonic()
    infos = _addresses(
        parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), local_ok, started + TIMEOUT_S
    )
    deadline = _Deadline(max(0.05, started + TIMEOUT_S - time.monotonic()))
    try:
        connection = _connect(parts, infos, deadline)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(
                "GET", target, headers={"Accept": "application/json, application/jwk-set+json"}
            )
            response = connection.getresponse()
            if response.status != 200:
                raise JwksFetchError(f"the jwks_uri answered HTTP {response.status}")
            body = response.read(MAX_JWKS_BYTES + 1)
            lifetime = _lifetime(response)
        except (OSError, ValueError, http.client.HTTPException):
            if deadline.expired:
                raise JwksFetchError("the jwks_uri did not answer in time") from None
            raise JwksFetchError("the jwks_uri connection failed") from None
        finally:
            connection.close()
    finally:
        deadline.cancel()
    if deadline.expired:
        raise JwksFetchError("the jwks_uri did not answer in time")
    if len(body) > MAX_JWKS_BYTES:
        raise JwksFetchError(f"the key set at the jwks_uri is larger than {MAX_JWKS_BYTES // 1024} KiB")
    try:
        return parse_jwks(body, skip_unusable=True), lifetime
    except JwksError as error:
        raise JwksFetchError(f"the key set at the jwks_uri is not usable: {error}") from None


@dataclass
class _Cached:
    keys: ClientKeys | None
    error: str | None
    fetched: float
    expires: float


class JwksCache:
    """Per-process cache of fetched key sets.

    Entries are keyed by client, its ``generation`` and the URI, so saving keys again (even
    the same URI) starts afresh. A failed fetch is remembered for ``FAILURE_TTL_S``, and one
    fetch per entry runs at a time: callers cannot make a worker fetch in a loop.
    """

    def __init__(self, fetch=fetch_jwks):
        self._fetch = fetch
        self._entries: dict[tuple, _Cached] = {}
        self._fetching: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def _usable(self, key: tuple, kid: str | None) -> _Cached | None:
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(key)
        if cached is None or now >= cached.expires:
            return None
        if cached.keys is None or kid is None or cached.keys.has_kid(kid):
            return cached
        return cached if now - cached.fetched < UNKNOWN_KID_REFETCH_S else None

    def keys(self, owner: tuple, uri: str, *, local_ok: bool, kid: str | None) -> ClientKeys:
        """The key set at ``uri`` for ``owner`` (client id, generation); raise ``JwksFetchError``."""
        key = (*owner, uri)
        cached = self._usable(key, kid)
        if cached is None:
            with self._lock:
                fetching = self._fetching.setdefault(key, threading.Lock())
            with fetching:
                cached = self._usable(key, kid)  # another request may have fetched meanwhile
                if cached is None:
                    cached = self._fetch_into(key, uri, local_ok)
        if cached.keys is None:
            raise JwksFetchError(cached.error)
        return cached.keys

    def _fetch_into(self, key: tuple, uri: str, local_ok: bool) -> _Cached:
        now = time.monotonic()
        try:
            keys, lifetime = self._fetch(uri, local_ok=local_ok)
            cached = _Cached(keys, None, now, now + lifetime)
        except JwksFetchError as error:
            cached = _Cached(None, str(error), now, now + FAILURE_TTL_S)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
                self._fetching = {k: v for k, v in self._fetching.items() if k == key}
            self._entries[key] = cached
        return cached
