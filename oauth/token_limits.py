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
Lua script, where checking and counting apart would take three.
"""

from __future__ import annotations

import time
from functools import lru_cache

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from app.extensions import limiter

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


def address_locked(address: str | None) -> bool:
    """Whether the address has used up its failed authentications. Counts nothing."""
    strategy = limiter.limiter
    failed = f"authfail:{address}"
    return any(
        not strategy.test(item, _SCOPE, failed)
        for item in _limits(current_app.config["FHIRGATE_AUTH_FAILURE_LIMIT"])
    )


def count(client_id: str | None, address: str | None, status: int) -> None:
    """Count an answered request: against the client unless 401, against the address if 401."""
    if status == 429:
        return  # refused before any work was done
    failures = status == 401
    for limit, key in _checks(client_id, address):
        if key.startswith("authfail:") == failures:
            limiter.limiter.hit(limit, _SCOPE, key)


def admit(client_id: str, address: str | None) -> bool:
    """Check the client's limit and count a success against it, as one step: False (and
    nothing counted) if it is used up. The caller has checked ``address_locked`` already
    (the Redis script checks the address's failures again: it costs nothing more there)."""
    checks = _checks(client_id, address)
    storage = limiter.storage
    # The script speaks plain Redis and the fixed window; a cluster (keys in two slots),
    # several items per setting or another strategy take the general way.
    if (
        type(storage) is not RedisStorage
        or type(limiter.limiter) is not FixedWindowRateLimiter
        or len(checks) != 2
    ):
        strategy = limiter.limiter
        claimed = [(limit, key) for limit, key in checks if not key.startswith("authfail:")]
        if not all(strategy.test(limit, _SCOPE, key) for limit, key in claimed):
            return False
        for limit, key in claimed:
            strategy.hit(limit, _SCOPE, key)
        return True
    (client_limit, claimed), (failure_limit, failed) = checks
    script = current_app.extensions.get("fhirgate_admit_script")
    if script is None or script.registered_client is not storage.get_connection():
        script = storage.get_connection().register_script(_ADMIT_SCRIPT)
        current_app.extensions["fhirgate_admit_script"] = script
    keys = [
        storage.prefixed_key(client_limit.key_for(_SCOPE, claimed)),
        storage.prefixed_key(failure_limit.key_for(_SCOPE, failed)),
    ]
    return script(keys, [client_limit.amount, failure_limit.amount, client_limit.get_expiry()]) == 1
