"""The in-memory rate-limit storage counts like limits' own, without timer threads."""

from __future__ import annotations

import threading
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from app.rate_limit_storage import SWEEP_EVERY, SweepingMemoryStorage


def test_the_scheme_makes_this_storage():
    assert isinstance(storage_from_string("fhirgate-memory://"), SweepingMemoryStorage)


def test_counts_a_fixed_window_and_starts_no_thread():
    storage = SweepingMemoryStorage()
    limiter = FixedWindowRateLimiter(storage)
    limit = parse("3/minute")
    threads_before = threading.active_count()
    assert [limiter.hit(limit, "scope", "client:a") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(limit, "scope", "client:b")  # another key has its own count
    assert not limiter.test(limit, "scope", "client:a")
    assert threading.active_count() == threads_before


def test_a_window_ends_and_expired_keys_are_swept(monkeypatch):
    storage = SweepingMemoryStorage()
    limiter = FixedWindowRateLimiter(storage)
    limit = parse("1/second")
    assert limiter.hit(limit, "scope", "old")
    assert not limiter.hit(limit, "scope", "old")

    later = time.time() + 2
    monkeypatch.setattr(time, "time", lambda: later)
    for n in range(SWEEP_EVERY):  # hits on other keys only: "old" is never read again
        limiter.hit(parse("1000000/hour"), "scope", f"live-{n % 7}")
    assert all("/old/" not in key for key in storage.expirations)
    assert any("/live-0/" in key for key in storage.expirations)
    assert limiter.hit(limit, "scope", "old")  # its window has ended


def test_reset_clears_every_count():
    storage = SweepingMemoryStorage()
    limiter = FixedWindowRateLimiter(storage)
    limit = parse("1/minute")
    limiter.hit(limit, "scope", "k")
    storage.reset()
    assert limiter.hit(limit, "scope", "k")


def test_admit_counts_as_the_fixed_window_strategy_does():
    storage = SweepingMemoryStorage()
    limiter = FixedWindowRateLimiter(storage)
    limit = parse("3/minute")
    key = limit.key_for("scope", "client:a")
    assert [storage.admit([(key, 3, limit.get_expiry())]) for _ in range(4)] == [True, True, True, False]
    assert not limiter.test(limit, "scope", "client:a")
    assert limiter.get_window_stats(limit, "scope", "client:a").remaining == 0
    assert storage.count_now(key) == 3  # the refused fourth counted nothing
    assert limiter.hit(limit, "scope", "client:b")  # another key has its own count


def test_an_admitted_window_starts_with_its_first_hit_and_ends(monkeypatch):
    storage = SweepingMemoryStorage()
    limiter = FixedWindowRateLimiter(storage)
    limit = parse("1/second")
    key = limit.key_for("scope", "client:a")
    assert storage.admit([(key, 1, 1)])
    assert not storage.admit([(key, 1, 1)])
    assert not limiter.test(limit, "scope", "client:a")
    later = time.time() + 2
    monkeypatch.setattr(time, "time", lambda: later)
    assert storage.count_now(key) == 0
    assert storage.admit([(key, 1, 1)])
    assert storage.expirations[key] == later + 1
