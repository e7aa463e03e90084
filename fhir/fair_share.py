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

import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from flask import Flask, Response, current_app, g
from limits import parse, parse_many
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
    "search-compartment": 10,
    "search-system": 10,
    "history-instance": 10,
    "history-type": 10,
    "history-system": 10,
    "operation": 20,
    "transaction": 5,  # and its entries: bundle_weight
}
BURST_S = 1.0  # a full bucket holds one second's worth of the rate
GRACE_MS = 25.0  # beyond this, a heavy request costs its time
# What a heavy request holds of its client's bucket while it runs: a second of a worker's time,
# at most half the bucket (so with the default share two at once, with a larger one more).
HEAVY_RESERVE_POINTS = 1000.0
HEAVY_RESERVE_SHARE = 0.5
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
    """One positive rate (``6000/minute``): what a hospital's own limit may be."""
    try:
        items = parse_many(text)
    except ValueError:
        return False
    return len(items) == 1 and items[0].amount > 0


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


# A bucket and what a request costs it: ``(key, rate, points)``; points may be negative (a refund).
Charge = tuple[str, Rate, float]


class MemoryBuckets:
    """This worker's buckets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrivals: dict[str, float] = {}
        self._operations = 0

    def admit(self, charges: list[Charge], now: float) -> float | None:
        """Charge every bucket its points and answer None, or charge nothing and answer the
        seconds until they would fit."""
        with self._lock:
            self._sweep(now)
            waits = [_wait(self._arrivals.get(key, now), rate, points, now) for key, rate, points in charges]
            if any(wait > EPSILON_S for wait in waits):
                return max(waits)
            self._add(charges, now)
            return None

    def charge(self, charges: list[Charge], now: float) -> None:
        with self._lock:
            self._add(charges, now)

    def _add(self, charges: list[Charge], now: float) -> None:
        for key, rate, points in charges:
            self._arrivals[key] = max(self._arrivals.get(key, now), now) + points / rate.per_second

    def _sweep(self, now: float) -> None:
        """Forget full buckets (an arrival time in the past reads as full anyway)."""
        self._operations += 1
        if self._operations >= SWEEP_EVERY:
            self._operations = 0
            self._arrivals = {key: at for key, at in self._arrivals.items() if at > now}


def _wait(arrival: float, rate: Rate, points: float, now: float) -> float:
    """Seconds until ``points`` fit in the bucket whose theoretical arrival time is ``arrival``."""
    return max(arrival, now) + points / rate.per_second - now - rate.window


# KEYS: the buckets; ARGV: now, then each bucket's points per second, window and points.
_ADMIT = """
local now = tonumber(ARGV[1])
local longest, arrivals = 0, {}
for i, key in ipairs(KEYS) do
    local per_second, window = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
    local points = tonumber(ARGV[3 * i + 1])
    local arrival = math.max(tonumber(redis.call("get", key) or "0"), now) + points / per_second
    arrivals[i] = arrival
    longest = math.max(longest, arrival - now - window)
end
if longest > 1e-9 then return tostring(longest) end
for i, key in ipairs(KEYS) do
    local ttl = math.max(math.ceil((arrivals[i] - now) * 1000), 0) + 1000
    redis.call("set", key, tostring(arrivals[i]), "PX", ttl)
end
return "0"
"""
_CHARGE = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    local per_second, points = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i + 1])
    local arrival = math.max(tonumber(redis.call("get", key) or "0"), now) + points / per_second
    redis.call("set", key, tostring(arrival), "PX", math.max(math.ceil((arrival - now) * 1000), 0) + 1000)
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

    def _call(self, which: int, charges: list[Charge], now: float):
        argv: list[str] = [repr(now)]
        for _, rate, points in charges:
            argv += [repr(rate.per_second), repr(rate.window), repr(float(points))]
        keys = [self._storage.prefixed_key(f"fhir-share:{key}") for key, _, _ in charges]
        return self._script(which)(keys, argv)

    def admit(self, charges: list[Charge], now: float) -> float | None:
        wait = float(self._call(1, charges, now))
        return wait if wait > EPSILON_S else None

    def charge(self, charges: list[Charge], now: float) -> None:
        self._call(2, charges, now)


@dataclass(frozen=True)
class Admission:
    """What a request was charged when admitted: each bucket's key, rate and points."""

    charges: tuple[Charge, ...]
    weight: float
    started: float | None  # time.perf_counter() for the kinds that pay for their time


class FairShare:
    """The app's buckets and the limits that fill them."""

    def __init__(self, app: Flask) -> None:
        self.config = app.config
        self._hospital_limits: dict[str, tuple[float, HospitalLimits]] = {}
        self._memory = MemoryBuckets()

    def _buckets(self) -> MemoryBuckets | RedisBuckets:
        storage = limiter.storage
        if isinstance(storage, RedisStorage):
            if getattr(self, "_redis", None) is None or self._redis._storage is not storage:
                self._redis = RedisBuckets(storage)
            return self._redis
        return self._memory

    def limits(self, hospital_id: str) -> HospitalLimits:
        """The hospital's per-client and whole-hospital limits (its own, else the defaults),
        read again when older than ``HOSPITAL_LIMITS_TTL_S``."""
        cached = self.fresh_limits(hospital_id)
        if cached is None:
            hospital = db.session.get(Hospital, hospital_id)
            config = self.config
            per_client = (hospital and hospital.fhir_client_limit) or config["FHIRGATE_FHIR_CLIENT_LIMIT"]
            whole = (hospital and hospital.fhir_hospital_limit) or config["FHIRGATE_FHIR_HOSPITAL_LIMIT"]
            cached = HospitalLimits(per_client, parse_rate(per_client), whole, parse_rate(whole))
            self._hospital_limits[hospital_id] = (time.monotonic(), cached)
        return cached

    def fresh_limits(self, hospital_id: str) -> HospitalLimits | None:
        """The hospital's limits if this worker read them within the TTL, else None (the read
        fast path then leaves the request to the view, which reads them)."""
        cached = self._hospital_limits.get(hospital_id)
        if cached is None or time.monotonic() - cached[0] > HOSPITAL_LIMITS_TTL_S:
            return None
        return cached[1]

    def admit(
        self, limits: HospitalLimits, hospital_id: str, client_id: str, weight: float, *, heavy: bool
    ) -> Admission | int:
        """The admission (its points charged) if the request may go on, else seconds to wait.

        A weight beyond a full bucket is charged up to the bucket's size now and the rest when
        it is answered: it waits for a full bucket, not for ever. A heavy request reserves a
        second of work (at most half its client's bucket) until it is answered, and gets back
        what it did not use: a client cannot start heavy requests on every worker at once
        before any of them is charged, while one paging through results goes on."""
        burst = limits.client_rate.burst
        reserve = min(HEAVY_RESERVE_POINTS, burst * HEAVY_RESERVE_SHARE)
        client_points = max(min(weight, burst), reserve) if heavy else min(weight, burst)
        charges = (
            (f"client:{hospital_id}:{client_id}", limits.client_rate, client_points),
            (f"hospital:{hospital_id}", limits.rate, min(weight, limits.rate.burst)),
        )
        wait = self._buckets().admit(list(charges), time.time())
        if wait is not None:
            return max(1, math.ceil(wait))
        return Admission(charges, weight, time.perf_counter() if heavy else None)

    def settle(self, admission: Admission, weight: float | None = None) -> None:
        """Charge each bucket what the request cost beyond what ``admit`` took (or give back
        what it took beyond the cost). No database: this runs after the answer is made."""
        weight = admission.weight if weight is None else max(weight, admission.weight)
        cost = (
            weight if admission.started is None else cost_of(weight, time.perf_counter() - admission.started)
        )
        charges = [(key, rate, cost - points) for key, rate, points in admission.charges if cost != points]
        if charges:
            self._buckets().charge(charges, time.time())


def cost_of(weight: float, seconds: float) -> float:
    """A request's cost in points: its weight, or its milliseconds beyond the grace."""
    return max(weight, seconds * 1000.0 - GRACE_MS)


def init_fair_share(app: Flask) -> None:
    app.extensions["fhirgate_fair_share"] = FairShare(app)


# -- in the Flask views ---------------------------------------------------------------
log = logging.getLogger(__name__)


def fair_share() -> FairShare:
    return current_app.extensions["fhirgate_fair_share"]


def throttled(wait: int, limits: HospitalLimits) -> FhirError:
    message = (
        f"This client, or its hospital, has used its share of the FHIR API ({limits.client} points a"
        f" client, {limits.whole} for the hospital; a point is a millisecond of work: a read costs"
        f" {WEIGHTS['read']:g}, a search {WEIGHTS['search-type']:g}, a longer search its time)."
        f" Retry after {wait} s."
    )
    return FhirError(429, [Issue(THROTTLED, message)], {"Retry-After": str(wait)})


def admit_fair_share(principal, interaction: str, *, heavy: bool) -> None:
    """Before a request's work: charge its weight, or answer 429 with ``Retry-After``. Only
    heavy requests (searches and their kin, ``app.lanes.is_heavy``) pay for their time: a read
    or a write is bounded by itself, and one that takes long was held up by others."""
    share = fair_share()
    limits = share.limits(principal.hospital_id)
    weight = WEIGHTS.get(interaction, WEIGHTS["read"])
    admitted = share.admit(limits, principal.hospital_id, principal.client_id, weight, heavy=heavy)
    if not isinstance(admitted, Admission):
        raise throttled(admitted, limits)
    g.fair_share = admitted


def weigh_request(weight: float) -> None:
    """A request whose weight is known only from its body (a Bundle): what it costs at least."""
    g.fair_share_weight = weight


def charge_fair_share(response: Response) -> Response:
    """``after_request``: settle the request's cost. A failure here (Redis gone) is logged and
    never costs the answer or its AuditEvent."""
    admitted = g.pop("fair_share", None)
    if admitted is not None:
        try:
            fair_share().settle(admitted, g.pop("fair_share_weight", None))
        except Exception as error:  # noqa: BLE001 - the request is answered: keep the answer
            log.warning("could not charge a request's share (%s)", type(error).__name__)
    return response
