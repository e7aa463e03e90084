"""HTTP to upstream EHRs: kept-alive pooled connections, bounded in time and size, no redirects.

Each worker keeps idle connections per upstream origin and reuses them (a new TCP and TLS
handshake per proxied request would cost more than the request). Every request ends within its
deadline: each socket wait is held to the time left, so a server that drips its answer a byte
at a time is cut off at the deadline plus at most one wait. An answer larger than the cap is
abandoned (and its connection closed), a redirect is never followed (it could point inside the
network), and where the operator demands public addresses the host name is resolved here,
every address checked, and the connection made to a checked address (the name kept for TLS),
as for a client's ``jwks_uri``.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from oauth.jwks_fetch import is_public

CONNECT_TIMEOUT_S = 3.0
MAX_IDLE_PER_ORIGIN = 8
IDLE_REUSE_S = 30.0  # an idle connection older than this is closed, not reused
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_CHUNK = 64 * 1024


class UpstreamFailure(Exception):
    """The upstream could not be reached or did not answer usably. ``timeout``: it did not
    answer in time (504); otherwise 502. The message names no credential."""

    def __init__(self, message: str, *, timeout: bool = False):
        super().__init__(message)
        self.timeout = timeout


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


@dataclass
class _Idle:
    connection: http.client.HTTPConnection
    since: float


class UpstreamHttp:
    """One per worker: pooled connections to upstream origins."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[_Idle]] = {}
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes | None = None,
        timeout_s: float,
        max_bytes: int,
        local_ok: bool,
    ) -> Answer:
        """``local_ok``: plain http and local addresses allowed (development only)."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise UpstreamFailure("the upstream URL is not usable")
        if parts.scheme == "http" and not local_ok:
            raise UpstreamFailure("the upstream must use https")
        # Pooled apart by local_ok: a connection made when local addresses were allowed is not
        # reused once they are not.
        origin = (
            parts.scheme,
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            local_ok,
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        deadline = time.monotonic() + timeout_s
        pooled = self._take(origin)
        if pooled is not None:
            try:
                return self._exchange(origin, pooled, method, target, headers, body, deadline, max_bytes)
            except _Stale:
                if method not in IDEMPOTENT:
                    raise UpstreamFailure("the upstream closed the connection") from None
        connection = self._connect(origin, deadline)
        try:
            return self._exchange(origin, connection, method, target, headers, body, deadline, max_bytes)
        except _Stale:
            raise UpstreamFailure("the upstream closed the connection without an answer") from None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for entries in idle.values():
            for entry in entries:
                entry.connection.close()

    # -- connections -----------------------------------------------------------------------
    def _take(self, origin) -> http.client.HTTPConnection | None:
        now = time.monotonic()
        with self._lock:
            entries = self._idle.get(origin, [])
            while entries:
                entry = entries.pop()
                if now - entry.since < IDLE_REUSE_S:
                    return entry.connection
                entry.connection.close()
        return None

    def _give_back(self, origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            entries = self._idle.setdefault(origin, [])
            if len(entries) < MAX_IDLE_PER_ORIGIN:
                entries.append(_Idle(connection, time.monotonic()))
                return
        connection.close()

    def _addresses(self, host: str, port: int, local_ok: bool) -> list[tuple]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise UpstreamFailure("the upstream host name does not resolve") from None
        if not local_ok:
            for info in infos:
                if not is_public(ipaddress.ip_address(info[4][0].split("%")[0])):
                    raise UpstreamFailure("the upstream resolves to a loopback, private or local address")
        return infos

    def _connect(self, origin, deadline: float) -> http.client.HTTPConnection:
        scheme, host, port, local_ok = origin
        last_error: OSError | None = None
        for family, kind, proto, _, sockaddr in self._addresses(host, port, local_ok):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock = socket.socket(family, kind, proto)
            sock.settimeout(min(CONNECT_TIMEOUT_S, remaining))
            try:
                sock.connect(sockaddr)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if scheme == "https":
                    sock = self._tls.wrap_socket(sock, server_hostname=host)
            except OSError as error:
                sock.close()
                last_error = error
                continue
            connection = http.client.HTTPConnection(host, port)
            connection.sock = sock
            return connection
        if isinstance(last_error, TimeoutError) or time.monotonic() >= deadline:
            raise UpstreamFailure("the upstream did not accept a connection in time", timeout=True)
        if isinstance(last_error, ssl.SSLError):
            raise UpstreamFailure("the TLS handshake with the upstream failed")
        raise UpstreamFailure("the upstream refused the connection")

    # -- one exchange ----------------------------------------------------------------------
    def _exchange(self, origin, connection, method, target, headers, body, deadline, max_bytes) -> Answer:
        sock = connection.sock
        before_answer = True
        try:
            _wait(sock, deadline)
            connection.request(method, target, body=body, headers=headers)
            _wait(sock, deadline)
            response = connection.getresponse()
            before_answer = False  # an answer began: a failure from here on is the upstream's
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                connection.close()
                raise UpstreamFailure(f"the upstream's answer is larger than {max_bytes // 1024} KiB")
            chunks, size = [], 0
            while True:
                _wait(sock, deadline)
                chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    connection.close()
                    raise UpstreamFailure(f"the upstream's answer is larger than {max_bytes // 1024} KiB")
                chunks.append(chunk)
            # read1 leaves a response whose length it used up open, and the connection would then
            # refuse its next request: closing the response frees it (the socket stays open).
            response.close()
        except UpstreamFailure:
            connection.close()
            raise
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            connection.close()
            if before_answer:
                raise _Stale from None  # the caller decides whether to try a new connection
            raise UpstreamFailure("the upstream closed the connection mid-answer") from None
        except TimeoutError:
            connection.close()
            raise UpstreamFailure("the upstream did not answer in time", timeout=True) from None
        except (OSError, http.client.HTTPException, ValueError):
            connection.close()
            raise UpstreamFailure("the upstream's answer was not valid HTTP") from None
        answer = Answer(response.status, response.getheaders(), b"".join(chunks))
        if response.will_close:
            connection.close()
        else:
            self._give_back(origin, connection)
        return answer


class _Stale(Exception):
    """A pooled connection the upstream had closed before our request reached it."""


def _wait(sock, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    sock.settimeout(remaining)
