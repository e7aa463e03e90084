"""Refusals recorded without letting a flood of them fill a hospital's store.

Anyone can send a FHIR request without a token (or with a forged one) and be refused, and a
client over its share of the API (``fhir.fair_share``) is refused with 429 however often it
asks; an AuditEvent for each would let a stranger, or a misbehaving client, write a
hospital's store at the server's expense (22 MB in 15 s from one client). So such refusals
are tallied per hospital, client (none for a stranger), source address and status in windows
of ``WINDOW_S``: the first of each window is recorded at once, as any request is, and the
rest of the window as one summary AuditEvent carrying their number and period. A hospital's
window tracks at most ``MAX_SOURCES`` sources; further ones share one tally per client and
status, without an address. So a flood costs a hospital at most about
``2 * (MAX_SOURCES + 1)`` events per status, worker and window, whatever its size.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fhir.audit import RequestFacts

WINDOW_S = 60.0
MAX_SOURCES = 100


@dataclass
class _Window:
    opened: float  # time.monotonic() of the first request
    first: RequestFacts
    more: int = 0  # requests after the first
    since: datetime | None = None  # when the second came
    until: datetime | None = None  # when the last came

    def summary(self) -> RequestFacts | None:
        """The AuditEvent facts for the requests after the first, if any came."""
        if not self.more:
            return None
        return replace(
            self.first,
            recorded=self.until,
            period_start=self.since,
            query="",
            count=self.more,
            references=[],
        )


class RefusalTally:
    """Per-process windows of tallied refusals (thread-safe)."""

    def __init__(self, window_s: float = WINDOW_S, max_sources: int = MAX_SOURCES):
        self.window_s = window_s
        self.max_sources = max_sources
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str | None, str | None, int], _Window] = {}
        self._sources: dict[str, int] = {}  # hospital → windows it holds

    def admit(self, facts: RequestFacts, now: float | None = None) -> tuple[bool, list[RequestFacts]]:
        """Whether to record this request's event now, and summaries of windows it closed."""
        now = time.monotonic() if now is None else now
        closed: list[RequestFacts] = []
        with self._lock:
            key = (facts.hospital_id, facts.client_id, facts.address, facts.status)
            window = self._windows.get(key)
            if window is not None and now - window.opened >= self.window_s:
                closed.extend(self._close(key))
                window = None
            if window is None and self._sources.get(facts.hospital_id, 0) >= self.max_sources:
                # One tally for every further source of this client (or of strangers).
                key = (facts.hospital_id, facts.client_id, None, facts.status)
                window = self._windows.get(key)
                facts = replace(facts, address=None)
            if window is None:
                self._windows[key] = _Window(now, facts)
                self._sources[facts.hospital_id] = self._sources.get(facts.hospital_id, 0) + 1
                return True, closed
            window.more += 1
            window.since = window.since or facts.recorded
            window.until = facts.recorded
            return False, closed

    def due(self, now: float | None = None, *, everything: bool = False) -> list[RequestFacts]:
        """Close the windows that have ended (all of them with ``everything``); their summaries."""
        now = time.monotonic() if now is None else now
        with self._lock:
            ended = [k for k, w in self._windows.items() if everything or now - w.opened >= self.window_s]
            return [summary for key in ended for summary in self._close(key)]

    def pending(self) -> bool:
        return bool(self._windows)

    def _close(self, key) -> list[RequestFacts]:
        window = self._windows.pop(key)
        left = self._sources[key[0]] - 1
        if left:
            self._sources[key[0]] = left
        else:
            del self._sources[key[0]]
        summary = window.summary()
        return [summary] if summary else []


def period_text(facts: RequestFacts) -> str:
    """``outcomeDesc`` of a summary event: how many, what they asked, over which period."""
    start = facts.period_start or facts.recorded
    seconds = max(timedelta(0), facts.recorded - start).total_seconds()
    origin = f"from {facts.address[:100]}" if facts.address else "from further addresses"
    what = "over the client's share of the API" if facts.client_id else "without a valid token"
    return (
        f"HTTP {facts.status} for {facts.count} more requests {what} {origin}"
        f" within {seconds:.0f} s (the first: {facts.method} {facts.path})"
    )
