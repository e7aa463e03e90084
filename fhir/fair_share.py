"""Each client's fair share of the FHIR API: rate limits in points, weighted by cost.

A point is a millisecond of a worker's time. A request costs its interaction's weight — a read
half a point, a write 5, a search or a history 10, ``$everything`` 20, a Bundle the sum of its
entries' — and a search, history, ``$everything`` or Bundle that works longer than
``GRACE_MS`` costs its time beyond that: so a search costs more than a read, and one that turns
out heavy costs what it took, whatever made it heavy. (A read or a write is bounded by itself:
if it takes long, others held it up, and it pays its weight; so does a search slowed by a busy
server within the grace.) Every client has a budget of points
(``FHIRGATE_FHIR_CLIENT_LIMIT``) and so has every hospital, for all its clients together
(``FHIRGATE_FHIR_HOSPITAL_LIMIT``); a hospital may have its own (``fhirgate hospital limits``).
Beyond either, the answer is 429 with ``Retry-After``, before any work is done: one client, or
one hospital, cannot take the workers from the rest.

The budgets are token buckets (GCRA: one "theoretical arrival time" per key): a client may
spend up to one second's worth of its rate at once, then at its rate. A request is admitted if
its weight fits, and charged the rest of its cost when it is answered; a heavy request may so
overdraw the bucket, and the client waits until it has paid it back. Without ``REDIS_URL`` the
buckets live in each worker (a client's share is then per worker, as the token endpoint's
limits are); with it, in Redis, shared by every worker and host (one script call to admit,
one more to charge a request that cost more than its weight).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from flask import Flask, Response, current_app, g
from limits import parse
from limits.storage import RedisStorage

from app.extensions import db, limiter
from app.models import Hospital
from fhir.errors import THROTTLED, FhirError, Issue

WEIGHTS = {
    "read": 0.5,
    "vread": 0.5,
    "create": 5,
    "update": 5,
    "patch": 5,
    "delete": 5,
    "search-type": 10,
    "history-instance": 10,
    "history-type": 10,
    "history-system": 10,
    "operation": 20,
    "transaction": 5,  # and its entries: bundle_weight
}
# The interactions whose cost grows with what they find: they also pay for their time.
TIMED = frozenset(
    {"search-type", "history-instance", "history-type", "history-system", "operation", "transaction"}
)
BURST_S = 1.0  # a full bucket holds one second's worth of the rate
GRACE_MS = 25.0  # beyond this, a request costs its time
HOSPITAL_LIMITS_TTL_S = 30.0  # a changed hospital limit reaches every worker within this
SWEEP_EVERY = 4096
EPSILON_S = 1e-9  # fifty 1/50 s steps add up to a hair over 1 s in floating point


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: float

    @property
    def window(self) -> float:
        """The seconds a full bucket spans (GCRA's tolerance)."""
        return self.burst / self.per_second


@lru_cache(maxsize=64)
def parse_rate(text: str) -> Rate:
    """``"30000/minute"`` (the limits syntax, in points) → a rate and its burst."""
    item = parse(text)
    per_second = item.amount / item.get_expiry()
    return Rate(per_second, max(per_second * BURST_S, float(WEIGHTS["operation"])))


def valid_rate(text: str) -> bool:
    try:
        return parse_rate(text).per_second > 0
    except ValueError:
        return False


def bundle_weight(entries: object) -> float:
    """A batch or transaction Bundle's weight: each entry's, as if sent alone."""
    if not isinstance(entries, list):
        return WEIGHTS["transaction"]
    weight = 0.0
    for entry in entries:
        request = entry.get("request") if isinstance(entry, dict) else None
        method = str(request.get("method", "")).upper() if isinstance(request, dict) else ""
        url = str(request.get("url", "")) if isinstance(request, dict) else ""
        if method in ("GET", "HEAD"):
            is_read = url.split("?", 1)[0].strip("/").count("/") in (1, 3)
            weight += WEIGHTS["read"] if is_read and "?" not in url else WEIGHTS["search-type"]
        else:
            weight += WEIGHTS["create"]
    return max(weight, WEIGHTS["transaction"])


@dataclass(frozen=True)
class HospitalLimits:
    client: str  # as configured, e.g. "30000/minute"
    client_rate: Rate
    whole: str
    rate: Rate


class MemoryBuckets:
    """This worker's buckets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrivals: dict[str, float] = {}
        self._operations = 0

    def admit(self, keys: list[tuple[str, Rate]], cost: float, now: float) -> float | None:
        with self._lock:
            self._sweep(now)
            waits = [_wait(self._arrivals.get(key, now), rate, cost, now) for key, rate in keys]
            if any(wait > EPSILON_S for wait in waits):
                return max(waits)
            for key, rate in keys:
                self._arrivals[key] = max(self._arrivals.get(key, now), now) + cost / rate.per_second
            return None

    def charge(self, keys: list[tuple[str, Rate]], cost: float, now: float) -> None:
        with self._lock:
            for key, rate in keys:
                self._arrivals[key] = max(self._arrivals.get(key, now), now) + cost / rate.per_second

    def _sweep(self, now: float) -> None:
        """Forget full buckets (an arrival time in the past reads as full anyway)."""
        self._operations += 1
        if self._operations >= SWEEP_EVERY:
            self._operations = 0
            self._arrivals = {key: at for key, at in self._arrivals.items() if at > now}


def _wait(arrival: float, rate: Rate, cost: float, now: float) -> float:
    """Seconds until ``cost`` fits in the bucket whose theoretical arrival time is ``arrival``."""
    return max(arrival, now) + cost / rate.per_second - now - rate.window


# KEYS: the buckets; ARGV: now, cost, then each bucket's points per second and window.
_ADMIT = """
local now, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local longest, arrivals = 0, {}
for i, key in ipairs(KEYS) do
    local per_second, window = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
    local arrival = math.max(tonumber(redis.call("get", key) or "0"), now) + cost / per_second
    arrivals[i] = arrival
    longest = math.max(longest, arrival - now - window)
end
if longest > 1e-9 then return tostring(longest) end
for i, key in ipairs(KEYS) do
    redis.call("set", key, tostring(arrivals[i]), "PX", math.ceil((arrivals[i] - now) * 1000) + 1000)
end
return "0"
"""
_CHARGE = """
local now, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
    local per_second = tonumber(ARGV[1 + 2 * i])
    local arrival = math.max(tonumber(redis.call("get", key) or "0"), now) + cost / per_second
    redis.call("set", key, tostring(arrival), "PX", math.ceil((arrival - now) * 1000) + 1000)
end
return 0
"""


class RedisBuckets:
    """Buckets shared by every worker and host, in the rate limiter's Redis."""

    def __init__(self, storage: RedisStorage) -> None:
        self._storage = storage
        self._scripts: tuple[object, object, object] | None = None

    def _script(self, which: int):
        connection = self._storage.get_connection()
        if self._scripts is None or self._scripts[0] is not connection:
            self._scripts = (
                connection,
                connection.register_script(_ADMIT),
                connection.register_script(_CHARGE),
            )
        return self._scripts[which]

    def _call(self, which: int, keys: list[tuple[str, Rate]], cost: float, now: float):
        argv: list[float | str] = [repr(now), repr(float(cost))]
        for _, rate in keys:
            argv += [repr(rate.per_second), repr(rate.window)]
        redis_keys = [self._storage.prefixed_key(f"fhir-share:{key}") for key, _ in keys]
        return self._script(which)(redis_keys, argv)

    def admit(self, keys: list[tuple[str, Rate]], cost: float, now: float) -> float | None:
        wait = float(self._call(1, keys, cost, now))
        return wait if wait > EPSILON_S else None

    def charge(self, keys: list[tuple[str, Rate]], cost: float, now: float) -> None:
        self._call(2, keys, cost, now)


class FairShare:
    """The app's buckets and the limits that fill them."""

    def __init__(self, app: Flask) -> None:
        self.config = app.config
        self._hospital_limits: dict[str, tuple[float, Rate, Rate]] = {}
        self._memory = MemoryBuckets()

    def _buckets(self) -> MemoryBuckets | RedisBuckets:
        storage = limiter.storage
        if isinstance(storage, RedisStorage):
            if getattr(self, "_redis", None) is None or self._redis._storage is not storage:
                self._redis = RedisBuckets(storage)
            return self._redis
        return self._memory

    def limits(self, hospital_id: str) -> HospitalLimits:
        """The hospital's per-client and whole-hospital limits (its own, else the defaults)."""
        now = time.monotonic()
        cached = self._hospital_limits.get(hospital_id)
        if cached is None or now - cached[0] > HOSPITAL_LIMITS_TTL_S:
            hospital = db.session.get(Hospital, hospital_id)
            config = self.config
            per_client = (hospital and hospital.fhir_client_limit) or config["FHIRGATE_FHIR_CLIENT_LIMIT"]
            whole = (hospital and hospital.fhir_hospital_limit) or config["FHIRGATE_FHIR_HOSPITAL_LIMIT"]
            cached = (now, HospitalLimits(per_client, parse_rate(per_client), whole, parse_rate(whole)))
            self._hospital_limits[hospital_id] = cached
        return cached[1]

    def _keys(self, hospital_id: str, client_id: str) -> list[tuple[str, Rate]]:
        limits = self.limits(hospital_id)
        return [
            (f"client:{hospital_id}:{client_id}", limits.client_rate),
            (f"hospital:{hospital_id}", limits.rate),
        ]

    def admit(self, hospital_id: str, client_id: str, weight: float) -> tuple[float, int | None]:
        """``(points charged, None)`` if the request may go on, else ``(0, seconds to wait)``.

        A weight beyond a full bucket (a large Bundle) is charged up to the bucket's size now
        and the rest when it is answered: it waits for a full bucket, not for ever."""
        keys = self._keys(hospital_id, client_id)
        points = min(weight, *(rate.burst for _, rate in keys))
        wait = self._buckets().admit(keys, points, time.time())
        return (points, None) if wait is None else (0.0, max(1, math.ceil(wait)))

    def charge(self, hospital_id: str, client_id: str, cost: float) -> None:
        """Charge what a request cost beyond what ``admit`` took."""
        if cost > 0:
            self._buckets().charge(self._keys(hospital_id, client_id), cost, time.time())


def cost_of(weight: float, seconds: float) -> float:
    """A request's cost in points: its weight, or its milliseconds beyond the grace."""
    return max(weight, seconds * 1000.0 - GRACE_MS)


def init_fair_share(app: Flask) -> None:
    app.extensions["fhirgate_fair_share"] = FairShare(app)


# -- in the Flask views ---------------------------------------------------------------
# Discovery documents need no token and cost nothing worth counting.
PUBLIC_ENDPOINTS = frozenset({"fhir.metadata", "fhir.smart_configuration_document"})


def fair_share() -> FairShare:
    return current_app.extensions["fhirgate_fair_share"]


def throttled(wait: int, limits: HospitalLimits) -> FhirError:
    message = (
        f"This client, or its hospital, has used its share of the FHIR API ({limits.client} points a"
        f" client, {limits.whole} for the hospital; a point is a millisecond of work: a read costs"
        f" {WEIGHTS['read']:g}, a search {WEIGHTS['search-type']:g}, a longer request its time)."
        f" Retry after {wait} s."
    )
    return FhirError(429, [Issue(THROTTLED, message)], {"Retry-After": str(wait)})


def admit_fair_share(principal, interaction: str) -> None:
    """Before a request's work: charge its weight, or answer 429 with ``Retry-After``."""
    weight = WEIGHTS.get(interaction, WEIGHTS["read"])
    points, wait = fair_share().admit(principal.hospital_id, principal.client_id, weight)
    if wait is not None:
        raise throttled(wait, fair_share().limits(principal.hospital_id))
    # Only searches and their kin pay for their time: a read or a write is bounded by itself,
    # and one that takes long was held up by others (contention), not heavy of its own.
    started = time.perf_counter() if interaction in TIMED else None
    g.fair_share = (principal.hospital_id, principal.client_id, points, weight, started)


def weigh_request(weight: float) -> None:
    """A request whose weight is known only from its body (a Bundle): what it costs at least."""
    admitted = g.get("fair_share")
    if admitted is not None:
        g.fair_share = (*admitted[:3], max(admitted[3], weight), admitted[4])


def charge_fair_share(response: Response) -> Response:
    """After the request: charge the rest of its cost (``after_request``)."""
    admitted = g.pop("fair_share", None)
    if admitted is not None:
        hospital_id, client_id, points, weight, started = admitted
        cost = weight if started is None else cost_of(weight, time.perf_counter() - started)
        fair_share().charge(hospital_id, client_id, cost - points)
    return response
