"""The token endpoint's two rate limits, shared by the Flask view and the fast path.

* per client: every answer except a 401 counts against the client id the request claims
  (``FHIRGATE_TOKEN_RATE_LIMIT``). Failed authentications do not: client ids are not secret,
  so otherwise anyone could throttle a client.
* per address: failed authentications (401) count against the caller's address
  (``FHIRGATE_AUTH_FAILURE_LIMIT``); once over it, even a right secret waits, so guessing
  cannot go on.

Both are checked before a request is processed and counted after it is answered, in the
storage Flask-Limiter was configured with (memory, or Redis shared by every worker), so
the fast path (``oauth.token_fast_path``) and the view count against the same figures. The
fast path checks and counts a success in one step (``admit``): on Redis one round trip, a
Lua script, where checking and counting apart would take three; in memory one call of the
storage's own ``admit``. The fast path runs without an application context, so its two
functions take the app.
"""

from __future__ import annotations

import time
from functools import lru_cache

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from app.extensions import limiter
from app.rate_limit_storage import SweepingMemoryStorage

_SCOPE = "oauth-token"
# Both counts under their limits: count the client's (as limits' incr_expire.lua does: the
# window starts with its first hit), answer 1; else count nothing, answer 0.
_ADMIT_SCRIPT = """
local claimed = tonumber(redis.call("get", KEYS[1]) or "0")
local failed = tonumber(redis.call("get", KEYS[2]) or "0")
if claimed >= tonumber(ARGV[1]) or failed >= tonumber(ARGV[2]) then
    return 0
end
if redis.call("incrby", KEYS[1], 1) == 1 then
    redis.call("expire", KEYS[1], ARGV[3])
end
return 1
"""


@lru_cache(maxsize=32)
def _limits(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text))  # "1200/minute;20/second": every item holds


@lru_cache(maxsize=4096)
def _keyed(text: str, identity: str) -> tuple[tuple[RateLimitItem, str], ...]:
    """Every item of setting ``text`` with its storage key for ``identity``."""
    return tuple((item, item.key_for(_SCOPE, identity)) for item in _limits(text))


def _fixed_window_in_memory() -> SweepingMemoryStorage | None:
    storage = limiter.storage
    if type(storage) is SweepingMemoryStorage and type(limiter.limiter) is FixedWindowRateLimiter:
        return storage
    return None


def _checks(client_id: str | None, address: str | None) -> list[tuple[RateLimitItem, str]]:
    """``(limit, key)`` for every item of both settings, the client's first."""
    config = current_app.config
    claimed = f"client:{client_id}" if client_id else f"addr:{address}"
    return [(item, claimed) for item in _limits(config["FHIRGATE_TOKEN_RATE_LIMIT"])] + [
        (item, f"authfail:{address}") for item in _limits(config["FHIRGATE_AUTH_FAILURE_LIMIT"])
    ]


def retry_after(client_id: str | None, address: str | None) -> int | None:
    """Seconds to wait if either limit is used up now, else None. Counts nothing."""
    strategy = limiter.limiter
    for limit, key in _checks(client_id, address):
        if not strategy.test(limit, _SCOPE, key):
            reset_at = strategy.get_window_stats(limit, _SCOPE, key).reset_time
            return max(1, int(reset_at - time.time()) + 1)
    return None


def address_locked(app: Flask, address: str | None) -> bool:
    """Whether the address has used up its failed authentications. Counts nothing."""
    failed = _keyed(app.config["FHIRGATE_AUTH_FAILURE_LIMIT"], f"authfail:{address}")
    memory = _fixed_window_in_memory()
    if memory is not None:
        return any(memory.count_now(key) >= item.amount for item, key in failed)
    strategy = limiter.limiter
    return any(not strategy.test(item, _SCOPE, f"authfail:{address}") for item, _ in failed)


def count(client_id: str | None, address: str | None, status: int) -> None:
    """Count an answered request: against the client unless 401, against the address if 401."""
    if status == 429:
        return  # refused before any work was done
    failures = status == 401
    for limit, key in _checks(client_id, address):
        if key.startswith("authfail:") == failures:
            limiter.limiter.hit(limit, _SCOPE, key)


def admit(app: Flask, client_id: str, address: str | None) -> bool:
    """Check the client's limit and count a success against it, as one step: False (and
    nothing counted) if it is used up. The caller has checked ``address_locked`` already
    (the Redis script checks the address's failures again: it costs nothing more there)."""
    claimed = _keyed(app.config["FHIRGATE_TOKEN_RATE_LIMIT"], f"client:{client_id}")
    memory = _fixed_window_in_memory()
    if memory is not None:
        return memory.admit([(key, item.amount, item.get_expiry()) for item, key in claimed])
    failed = _keyed(app.config["FHIRGATE_AUTH_FAILURE_LIMIT"], f"authfail:{address}")
    storage = limiter.storage
    # The script speaks plain Redis and the fixed window; a cluster (keys in two slots),
    # several items per setting or another strategy take the general way.
    if (
        type(storage) is not RedisStorage
        or type(limiter.limiter) is not FixedWindowRateLimiter
        or len(claimed) != 1
        or len(failed) != 1
    ):
        strategy = limiter.limiter
        if not all(strategy.test(item, _SCOPE, f"client:{client_id}") for item, _ in claimed):
            return False
        for item, _ in claimed:
            strategy.hit(item, _SCOPE, f"client:{client_id}")
        return True
    (client_limit, client_key), (failure_limit, failure_key) = claimed[0], failed[0]
    script = app.extensions.get("fhirgate_admit_script")
    if script is None or script.registered_client is not storage.get_connection():
        script = storage.get_connection().register_script(_ADMIT_SCRIPT)
        app.extensions["fhirgate_admit_script"] = script
    keys = [storage.prefixed_key(client_key), storage.prefixed_key(failure_key)]
    return script(keys, [client_limit.amount, failure_limit.amount, client_limit.get_expiry()]) == 1
