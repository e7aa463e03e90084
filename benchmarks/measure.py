"""Timing requests, in process (Flask test client) and over a socket (requests, keep-alive)."""

from __future__ import annotations

import http.client
import itertools
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

FHIR_JSON = "application/fhir+json"
MATCH = b'"search":{"mode":"match"}'
INCLUDE = b'"search":{"mode":"include"}'


@dataclass(frozen=True)
class Call:
    """One request: GET path, or POST body to path; ``units`` is what it carries (resources);
    ``headers`` are sent on top of (and override) the sender's own, e.g. another bearer token."""

    path: str
    body: bytes | None = None
    units: int = 1
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Stats:
    label: str
    mode: str
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    units: int = 0  # resources ingested, or entries returned by searches
    errors: int = 0
    first_error: str = ""
    stopped_early: bool = False
    target_p95_ms: float | None = None  # judged on single-client rows only: latency, not load

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.count / self.wall_s if self.wall_s else 0.0

    @property
    def unit_rate(self) -> float:
        return self.units / self.wall_s if self.wall_s else 0.0

    def percentile(self, p: int) -> float | None:
        data = self.latencies_ms
        if not data:
            return None
        if len(data) == 1:
            return data[0]
        return statistics.quantiles(data, n=100, method="inclusive")[p - 1]

    def absorb(self, part: Stats) -> None:
        """Add a partial run of the same row (rows measured in interleaved chunks)."""
        self.latencies_ms += part.latencies_ms
        self.wall_s += part.wall_s
        self.units += part.units
        self.errors += part.errors
        self.first_error = self.first_error or part.first_error
        self.stopped_early = self.stopped_early or part.stopped_early

    @property
    def meets_target(self) -> bool | None:
        p95 = self.percentile(95)
        if self.target_p95_ms is None or p95 is None:
            return None
        return p95 < self.target_p95_ms and not self.errors


# A sender performs one call and returns (status, body bytes).
Sender = Callable[[Call], tuple[int, bytes]]
SenderFactory = Callable[[], Sender]


def inprocess_sender(client, base: str, headers: dict) -> Sender:
    """Through the app's own HTTP layer: the Flask test client, no socket."""

    def send(call: Call) -> tuple[int, bytes]:
        sent = {**headers, **dict(call.headers)} if call.headers else headers
        if call.body is None:
            response = client.get(base + call.path, headers=sent)
        else:
            response = client.post(base + call.path, data=call.body, content_type=FHIR_JSON, headers=sent)
        return response.status_code, response.get_data()

    return send


def socket_sender_factory(base_url: str, headers: dict, timeout: float) -> SenderFactory:
    """One ``requests.Session`` (HTTP keep-alive) per client thread."""

    def make() -> Sender:
        session = requests.Session()
        session.headers.update(headers)

        def send(call: Call) -> tuple[int, bytes]:
            if call.body is None:
                response = session.get(base_url + call.path, headers=dict(call.headers), timeout=timeout)
            else:
                response = session.post(
                    base_url + call.path,
                    data=call.body,
                    headers={"Content-Type": FHIR_JSON, **dict(call.headers)},
                    timeout=timeout,
                )
            return response.status_code, response.content

        return send

    return make


def lean_sender_factory(base_url: str, headers: dict, timeout: float) -> SenderFactory:
    """``http.client``, one connection object per client thread: about 1.5 ms less client-side
    overhead per request than ``requests`` on a small machine, so latency is mostly the server's.
    It reconnects by itself when the server closes the connection after a response."""
    parts = urlsplit(base_url)
    prefix = parts.path

    def make() -> Sender:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

        def send(call: Call) -> tuple[int, bytes]:
            body_headers = {"Content-Type": FHIR_JSON} if call.body is not None else {}
            try:
                conn.request(
                    "GET" if call.body is None else "POST",
                    prefix + call.path,
                    body=call.body,
                    headers={**headers, **body_headers, **dict(call.headers)},
                )
                response = conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                raise requests.ConnectionError(str(error)) from error

        return send

    return make


def _units(call: Call, body: bytes) -> int:
    if call.body is not None:
        return call.units  # a transaction is all or nothing: 200 means every entry was stored
    if "?" not in call.path and "/" in call.path.strip("/"):
        return 1  # a read (Type/id); a bare "Type" is a search without parameters
    return body.count(MATCH) + body.count(INCLUDE)


def run(
    stats: Stats,
    calls: Sequence[Call],
    senders: Sequence[Sender],
    max_seconds: float,
    progress: Callable[[int], None] | None = None,
) -> Stats:
    """Send ``calls`` in order from ``len(senders)`` concurrent clients, until done or out of time."""
    lock = threading.Lock()
    next_index = itertools.count()
    started = time.perf_counter()
    deadline = started + max_seconds

    def client(send: Sender) -> None:
        while True:
            index = next(next_index)
            if index >= len(calls):
                return
            if time.perf_counter() > deadline:
                stats.stopped_early = True
                return
            call = calls[index]
            t0 = time.perf_counter()
            try:
                status, body = send(call)
            except requests.RequestException as error:
                status, body = 0, str(error).encode()
            elapsed_ms = (time.perf_counter() - t0) * 1000
            with lock:
                if status == 200:
                    stats.latencies_ms.append(elapsed_ms)
                    stats.units += _units(call, body)
                else:
                    stats.errors += 1
                    if not stats.first_error:
                        text = body[:400].decode("utf-8", "replace")
                        stats.first_error = f"{status} on {call.path[:120]}: {text}"
                done = stats.count + stats.errors
            if progress:
                progress(done)

    if len(senders) == 1:
        client(senders[0])
    else:
        threads = [threading.Thread(target=client, args=(send,), daemon=True) for send in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    stats.wall_s = time.perf_counter() - started
    return stats
