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
from limits import RateLimitItem, parse
from limits.storage import RedisStorage

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
def _limit(text: str) -> RateLimitItem:
    return parse(text)


def _checks(client_id: str | None, address: str | None) -> list[tuple[RateLimitItem, str]]:
    config = current_app.config
    claimed = f"client:{client_id}" if client_id else f"addr:{address}"
    return [
        (_limit(config["FHIRGATE_TOKEN_RATE_LIMIT"]), claimed),
        (_limit(config["FHIRGATE_AUTH_FAILURE_LIMIT"]), f"authfail:{address}"),
    ]


def retry_after(client_id: str | None, address: str | None) -> int | None:
    """Seconds to wait if either limit is used up now, else None. Counts nothing."""
    strategy = limiter.limiter
    for limit, key in _checks(client_id, address):
        if not strategy.test(limit, _SCOPE, key):
            reset_at = strategy.get_window_stats(limit, _SCOPE, key).reset_time
            return max(1, int(reset_at - time.time()) + 1)
    return None


def count(client_id: str | None, address: str | None, status: int) -> None:
    """Count an answered request: against the client unless 401, against the address if 401."""
    if status == 429:
        return  # refused before any work was done
    client_limit, failure_limit = _checks(client_id, address)
    limit, key = failure_limit if status == 401 else client_limit
    limiter.limiter.hit(limit, _SCOPE, key)


def admit(client_id: str, address: str | None) -> bool:
    """Check both limits and count a success against the client, as one step: False (and
    nothing counted) if either limit is used up."""
    (client_limit, claimed), (failure_limit, failed) = _checks(client_id, address)
    storage = limiter.storage
    if not isinstance(storage, RedisStorage):
        if retry_after(client_id, address) is not None:
            return False
        limiter.limiter.hit(client_limit, _SCOPE, claimed)
        return True
    script = current_app.extensions.get("fhirgate_admit_script")
    if script is None or script.registered_client is not storage.get_connection():
        script = storage.get_connection().register_script(_ADMIT_SCRIPT)
        current_app.extensions["fhirgate_admit_script"] = script
    keys = [
        storage.prefixed_key(client_limit.key_for(_SCOPE, claimed)),
        storage.prefixed_key(failure_limit.key_for(_SCOPE, failed)),
    ]
    return script(keys, [client_limit.amount, failure_limit.amount, client_limit.get_expiry()]) == 1
