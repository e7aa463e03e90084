"""The rate limits of the token, introspection and revocation endpoints, shared by the Flask
views and the token fast path.

A failure costs only the one who failed (SPEC "Limits": 429 with ``Retry-After``):

* per client (token endpoint only): requests that authenticated as the client count against
  it (``FHIRGATE_TOKEN_RATE_LIMIT``). Client ids are not secret: a request that did not
  authenticate never counts against the client it names.
* per address and claimed client id: every request that did not authenticate — a wrong
  secret or assertion (401), and anything refused before authentication (a missing or
  unsupported grant type, a malformed body, two methods...) — counts against the pair of its
  address and the client id it claims (``FHIRGATE_AUTH_FAILURE_LIMIT``), at all three
  endpoints together. Once the pair has used that up, its further requests are refused (429)
  before the secret is looked at, so guessing a client's secret stays bounded per address,
  while the client itself at another address, and another client with a valid credential at
  the same address, go on.

Both are checked before a request is processed and counted after it is answered, in the
storage Flask-Limiter was configured with (memory, or Redis shared by every worker), so the
fast path (``oauth.token_fast_path``) and the views count against the same figures. The fast
path checks and counts a success in one step (``admit``): on Redis one round trip, a Lua
script, where checking and counting apart would take three; in memory one call of the
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


def _client(client_id: str) -> str:
    return f"client:{client_id}"


def _failures(address: str | None, client_id: str | None) -> str:
    # The address first and a separator no address holds: no claimed id, however chosen, can
    # make the pair of another address.
    return f"authfail:{address}|{client_id or ''}"


def _fixed_window_in_memory() -> SweepingMemoryStorage | None:
    storage = limiter.storage
    if type(storage) is SweepingMemoryStorage and type(limiter.limiter) is FixedWindowRateLimiter:
        return storage
    return None


def _checks(client_id: str | None, address: str | None, per_client: bool) -> list[tuple[RateLimitItem, str]]:
    """``(limit, identity)`` for every item that guards a request claiming ``client_id``."""
    config = current_app.config
    failures = _failures(address, client_id)
    checks = [(item, failures) for item in _limits(config["FHIRGATE_AUTH_FAILURE_LIMIT"])]
    if per_client and client_id:
        checks += [(item, _client(client_id)) for item in _limits(config["FHIRGATE_TOKEN_RATE_LIMIT"])]
    return checks


def retry_after(client_id: str | None, address: str | None, *, per_client: bool = True) -> int | None:
    """Seconds to wait if the pair's failures, or (``per_client``) the claimed client's own
    requests, are used up now; else None. Counts nothing."""
    strategy = limiter.limiter
    for limit, identity in _checks(client_id, address, per_client):
        if not strategy.test(limit, _SCOPE, identity):
            reset_at = strategy.get_window_stats(limit, _SCOPE, identity).reset_time
            return max(1, int(reset_at - time.time()) + 1)
    return None


def count(
    authenticated: str | None,
    claimed: str | None,
    address: str | None,
    status: int,
    *,
    per_client: bool = True,
) -> None:
    """Count an answered request: against the client it authenticated as (``per_client``),
    or, if it did not authenticate, against its address and the client id it claimed."""
    if status == 429:
        return  # refused before any work was done
    config = current_app.config
    if authenticated is None:
        setting, identity = config["FHIRGATE_AUTH_FAILURE_LIMIT"], _failures(address, claimed)
    elif per_client:
        setting, identity = config["FHIRGATE_TOKEN_RATE_LIMIT"], _client(authenticated)
    else:
        return
    for limit in _limits(setting):
        limiter.limiter.hit(limit, _SCOPE, identity)


def pair_locked(app: Flask, address: str | None, client_id: str) -> bool:
    """Whether requests from ``address`` claiming ``client_id`` have used up their failures.
    Counts nothing."""
    identity = _failures(address, client_id)
    failed = _keyed(app.config["FHIRGATE_AUTH_FAILURE_LIMIT"], identity)
    memory = _fixed_window_in_memory()
    if memory is not None:
        return any(memory.count_now(key) >= item.amount for item, key in failed)
    strategy = limiter.limiter
    return any(not strategy.test(item, _SCOPE, identity) for item, _ in failed)


def admit(app: Flask, client_id: str, address: str | None) -> bool:
    """Check the client's limit and count a success against it, as one step: False (and
    nothing counted) if it is used up. The caller has checked ``pair_locked`` already (the
    Redis script checks the pair's failures again: it costs nothing more there)."""
    claimed = _keyed(app.config["FHIRGATE_TOKEN_RATE_LIMIT"], _client(client_id))
    memory = _fixed_window_in_memory()
    if memory is not None:
        return memory.admit([(key, item.amount, item.get_expiry()) for item, key in claimed])
    failed = _keyed(app.config["FHIRGATE_AUTH_FAILURE_LIMIT"], _failures(address, client_id))
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
        if not all(strategy.test(item, _SCOPE, _client(client_id)) for item, _ in claimed):
            return False
        for item, _ in claimed:
            strategy.hit(item, _SCOPE, _client(client_id))
        return True
    (client_limit, client_key), (failure_limit, failure_key) = claimed[0], failed[0]
    script = app.extensions.get("fhirgate_admit_script")
    if script is None or script.registered_client is not storage.get_connection():
        script = storage.get_connection().register_script(_ADMIT_SCRIPT)
        app.extensions["fhirgate_admit_script"] = script
    keys = [storage.prefixed_key(client_key), storage.prefixed_key(failure_key)]
    return script(keys, [client_limit.amount, failure_limit.amount, client_limit.get_expiry()]) == 1
