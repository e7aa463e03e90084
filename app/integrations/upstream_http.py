"""HTTP to upstream EHRs: kept-alive pooled connections, bounded in time and size, no redirects.

Each worker keeps idle connections per upstream origin and reuses them (a new TCP and TLS
handshake per proxied request would cost more than the request). Every request ends within its
deadline: each socket wait is held to the time left, so a server that drips its answer a byte
at a time is cut off at the deadline plus at most one wait. An answer larger than the cap is
abandoned (and its connection closed), a redirect is never followed (it could point inside the
network), and where the operator demands public addresses the host name is resolved here,
every address checked, and the connection made to a checked address (the name kept for TLS),
as for a client's ``jwks_uri``. HTTP/1.1 is spoken here directly over the socket (request line,
headers, Content-Length or chunked bodies): ``http.client`` parsed each answer's headers with the
e-mail parser, a tenth of a proxied read's time.
"""

from __future__ import annotations

import ipaddress
import re
import select
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
    sock: socket.socket
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
                entry.sock.close()

    # -- connections -----------------------------------------------------------------------
    def _take(self, origin) -> socket.socket | None:
        now = time.monotonic()
        with self._lock:
            entries = self._idle.get(origin, [])
            while entries:
                entry = entries.pop()
                if now - entry.since < IDLE_REUSE_S and _still_open(entry.sock):
                    return entry.sock
                entry.sock.close()
        return None

    def _give_back(self, origin, sock: socket.socket) -> None:
        with self._lock:
            entries = self._idle.setdefault(origin, [])
            if len(entries) < MAX_IDLE_PER_ORIGIN:
                entries.append(_Idle(sock, time.monotonic()))
                return
        sock.close()

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

    def _connect(self, origin, deadline: float) -> socket.socket:
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
            return sock
        if isinstance(last_error, TimeoutError) or time.monotonic() >= deadline:
            raise UpstreamFailure("the upstream did not accept a connection in time", timeout=True)
        if isinstance(last_error, ssl.SSLError):
            raise UpstreamFailure("the TLS handshake with the upstream failed")
        raise UpstreamFailure("the upstream refused the connection")

    # -- one exchange ----------------------------------------------------------------------
    def _exchange(self, origin, sock, method, target, headers, body, deadline, max_bytes) -> Answer:
        scheme, host, port, _ = origin
        default_port = 443 if scheme == "https" else 80
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host if port == default_port else f'{host}:{port}'}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                sock.close()
                raise UpstreamFailure("a header to send holds a line break")
            lines.append(f"{name}: {value}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        reader = _Reader(sock, deadline)
        try:
            reader.send(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + (body or b""))
            status, answer_headers, close = reader.head()
            if method == "HEAD" or status in (204, 304):
                content = b""
            else:
                content, close = reader.body(answer_headers, close, max_bytes)
        except _Stale:
            sock.close()
            raise
        except UpstreamFailure:
            sock.close()
            raise
        except TimeoutError:
            sock.close()
            raise UpstreamFailure("the upstream did not answer in time", timeout=True) from None
        except (OSError, ValueError, UnicodeError):
            sock.close()
            raise UpstreamFailure("the upstream's answer was not valid HTTP") from None
        if close:
            sock.close()
        else:
            self._give_back(origin, sock)
        return Answer(status, answer_headers, content)


MAX_HEAD = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class _Reader:
    """One answer read off a socket within the deadline: its head, then its body."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.deadline = deadline
        self.buffer = bytearray()
        self.received = 0

    def send(self, data: bytes) -> None:
        try:
            _wait(self.sock, self.deadline)
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            raise _Stale from None

    def _more(self) -> bool:
        _wait(self.sock, self.deadline)
        try:
            chunk = self.sock.recv(_CHUNK)
        except ConnectionResetError:
            if self.received == 0:
                raise _Stale from None
            raise
        self.received += len(chunk)
        self.buffer += chunk
        return bool(chunk)

    def head(self) -> tuple[int, list[tuple[str, str]], bool]:
        """Status, headers and whether the connection ends with this answer (1xx skipped)."""
        while True:
            while (end := self.buffer.find(b"\r\n\r\n")) < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise UpstreamFailure("the upstream's answer headers are too large")
                if not self._more():
                    if self.received == 0:
                        raise _Stale  # closed before answering: a kept-alive connection it had dropped
                    raise UpstreamFailure("the upstream closed the connection mid-answer")
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            version, _, rest = head[0].partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise UpstreamFailure("the upstream's answer was not valid HTTP")
            headers = []
            for line in head[1:]:
                name, colon, value = line.partition(":")
                if not colon or not name or name != name.strip():
                    raise UpstreamFailure("the upstream's answer was not valid HTTP")
                headers.append((name, value.strip()))
            if 100 <= int(code) < 200:
                continue  # an interim answer: the real one follows
            connection = ",".join(value.lower() for name, value in headers if name.lower() == "connection")
            close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
            return int(code), headers, close

    def body(self, headers: list[tuple[str, str]], close: bool, max_bytes: int) -> tuple[bytes, bool]:
        """The body, and whether the connection ends with it."""
        fields = {name.lower(): value for name, value in headers}
        too_large = UpstreamFailure(f"the upstream's answer is larger than {max_bytes // 1024} KiB")
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return self._chunked(max_bytes, too_large), close
        length = fields.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise UpstreamFailure("the upstream's answer was not valid HTTP")
            if int(length) > max_bytes:
                raise too_large
            return self._exactly(int(length)), close
        # Neither length nor chunks: the body ends with the connection (RFC 9112 §6.3).
        while self._more():
            if len(self.buffer) > max_bytes:
                raise too_large
        return bytes(self.buffer), True

    def _exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._more():
                raise UpstreamFailure("the upstream closed the connection mid-answer")
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD or not self._more():
                raise UpstreamFailure("the upstream's answer was not valid HTTP")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _chunked(self, max_bytes: int, too_large: UpstreamFailure) -> bytes:
        parts, size = [], 0
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise UpstreamFailure("the upstream's answer was not valid HTTP")
            length = int(size_text, 16)
            if length == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            size += length
            if size > max_bytes:
                raise too_large
            parts.append(self._exactly(length))
            if self._line():
                raise UpstreamFailure("the upstream's answer was not valid HTTP")


def _still_open(sock: socket.socket) -> bool:
    """An idle kept-alive socket is readable only when the upstream closed it (or sent what it
    should not have): then it is not reused, and a POST never meets a closed connection."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class _Stale(Exception):
    """A pooled connection the upstream had closed before our request reached it."""


def _wait(sock, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    sock.settimeout(remaining)
