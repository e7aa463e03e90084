"""Failed logins slow down, by account and by address, with one count for every worker,
host and login route (SPEC "Security requirements": "repeated failed logins slow down without
locking an account out forever").

``FHIRGATE_LOGIN_FAILURE_LIMIT`` (``10/minute``; several items with ``;``) holds for each of:

* the address the request comes from;
* the account the e-mail names — or, from a browser that logged in to that account before
  (``app/known_browsers.py``), that browser instead, so that a stranger's failures never
  lock the owner's own browser out.

The windows are fixed and start with their first failure; once one is used up, every login it
covers answers 429 with ``Retry-After`` until it closes — even with the right password, else
guessing would go on — and then starts afresh. Only failures count: each attempt reserves one
failure in every window it falls under before the password is checked (so parallel guesses
on many workers cannot overshoot the limit), and a success, a refusal or a bad request hands
its reservation back. The counters live in Redis when ``REDIS_URL`` is set (one Lua script a
step), else in the database (``login_failures``: one ``INSERT ... ON CONFLICT DO UPDATE ...
RETURNING`` a step, on SQLite and PostgreSQL alike; closed windows purged once a minute).
Counters are keyed by an HMAC under the server's secret: no e-mail, address or mistyped
password is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps

import redis
from flask import Flask, current_app, make_response, request
from limits import parse_many
from sqlalchemy import and_, case, delete, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from werkzeug.exceptions import TooManyRequests

from app.errors import ApiError
from app.extensions import db
from app.known_browsers import known_browser, remember_browser
from app.models import LoginFailure
from app.sessions import MAX_EMAIL

PURGE_EVERY_S = 60
clock = time.time  # tests move it forward instead of sleeping


@dataclass(frozen=True)
class Counter:
    key: str  # an HMAC naming what is counted and the limit item
    limit: int
    window_s: int


@lru_cache(maxsize=32)
def _items(setting: str) -> tuple[tuple[int, int], ...]:
    """``(amount, seconds)`` of every item of a limit such as ``"10/minute;50/hour"``."""
    return tuple((item.amount, item.get_expiry()) for item in parse_many(setting))


def normalized_email(value: object) -> str:
    """The e-mail as accounts are looked up (``app.sessions.find_user_by_email``)."""
    return value.strip().lower()[:MAX_EMAIL] if isinstance(value, str) else ""


def counters_for(email: str) -> list[Counter]:
    """The counters a login attempt for ``email`` from this request falls under."""
    nonce = known_browser(email) if email else None
    subjects = [f"address:{request.remote_addr}"]
    if nonce is not None:
        subjects.append(f"browser:{nonce}")
    elif email:
        subjects.append(f"account:{email}")
    secret = current_app.config["SECRET_KEY"].encode()
    counters = {}  # by key: an item given twice is one counter (an upsert may touch a row once)
    for amount, seconds in _items(current_app.config["FHIRGATE_LOGIN_FAILURE_LIMIT"]):
        for subject in subjects:
            # surrogatepass: a JSON body may carry a lone surrogate, and any text must count
            name = f"fhirgate-login|{subject}|{amount}/{seconds}".encode("utf-8", "surrogatepass")
            key = hmac.new(secret, name, hashlib.sha256).hexdigest()
            counters[key] = Counter(key, amount, seconds)
    return [counters[key] for key in sorted(counters)]  # one lock order for every request


class SqlCounters:
    """Fixed windows in the ``login_failures`` table."""

    _INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}

    def __init__(self) -> None:
        self._last_purge = 0.0
        self._purge_lock = threading.Lock()

    def reserve(self, counters: list[Counter], now: float) -> tuple[object, int]:
        """Count a failure against every counter: ``(held, 0)``, or ``(None, seconds to wait)``
        and nothing counted when one of them is then over its limit."""
        table = LoginFailure.__table__
        second = int(now)
        rows = [{"key": c.key, "count": 1, "window_ends": second + c.window_s} for c in counters]
        insert = self._INSERTS[db.engine.dialect.name](table).values(rows)
        closed = table.c.window_ends <= second
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((closed, 1), else_=table.c.count + 1),
                "window_ends": case((closed, insert.excluded.window_ends), else_=table.c.window_ends),
            },
        ).returning(table.c.key, table.c.count, table.c.window_ends)
        limits = {c.key: c.limit for c in counters}
        # On a connection of its own in autocommit: each step is atomic by itself, and the
        # count holds whatever the rest of the request does.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            counted = {key: (count, ends) for key, count, ends in connection.execute(statement)}
            held = [(key, ends) for key, (_, ends) in counted.items()]
            over = [ends for key, (count, ends) in counted.items() if count > limits[key]]
            if over:
                self._release(connection, held)
            self._purge(connection, second)
        return (None, max(1, max(over) - second)) if over else (held, 0)

    def release(self, held: object) -> None:
        """Hand back what ``reserve`` counted (only in the windows it counted in)."""
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            self._release(connection, held)

    def _release(self, connection, held) -> None:
        table = LoginFailure.__table__
        same_window = or_(*(and_(table.c.key == key, table.c.window_ends == ends) for key, ends in held))
        connection.execute(
            update(table).where(same_window, table.c.count > 0).values(count=table.c.count - 1)
        )

    def _purge(self, connection, second: int) -> None:
        with self._purge_lock:
            if time.monotonic() - self._last_purge < PURGE_EVERY_S:
                return
            self._last_purge = time.monotonic()
        connection.execute(delete(LoginFailure).where(LoginFailure.window_ends <= second))


# KEYS: the counters; ARGV: a new window's id, then the limit and window (ms) of each in turn.
# A counter is a hash: "n" the count, "w" the id of its window (given when its window starts
# with its first failure). Count a failure against every counter; if one is then over its limit,
# take them all back and answer {milliseconds until the last of those windows closes}, else
# {0, each counter's window id}.
_RESERVE = """
local wait, windows = 0, {}
for i, key in ipairs(KEYS) do
    local count = redis.call("HINCRBY", key, "n", 1)
    if redis.call("PTTL", key) < 0 then
        redis.call("HSET", key, "w", ARGV[1])
        redis.call("PEXPIRE", key, ARGV[2 * i + 1])
    end
    windows[i] = redis.call("HGET", key, "w")
    if count > tonumber(ARGV[2 * i]) then
        wait = math.max(wait, redis.call("PTTL", key), 1)
    end
end
if wait > 0 then
    for _, key in ipairs(KEYS) do
        redis.call("HINCRBY", key, "n", -1)
    end
    return {wait}
end
return {0, unpack(windows)}
"""
# KEYS: the counters; ARGV: the window id each was counted in. A window that closed meanwhile
# has nothing to hand back: its key is gone, or belongs to a new window with another id.
_RELEASE = """
for i, key in ipairs(KEYS) do
    if redis.call("HGET", key, "w") == ARGV[i] and tonumber(redis.call("HGET", key, "n") or "0") > 0 then
        redis.call("HINCRBY", key, "n", -1)
    end
end
return 0
"""


class RedisCounters:
    """Fixed windows in Redis: a key per counter, expiring when its window closes. The keys
    share one hash tag, so a Redis Cluster keeps them in one slot for the scripts."""

    PREFIX = "fhirgate:{login}:"

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url)
        self._reserve = self._redis.register_script(_RESERVE)
        self._release = self._redis.register_script(_RELEASE)

    def reserve(self, counters: list[Counter], now: float) -> tuple[object, int]:
        keys = [self.PREFIX + c.key for c in counters]
        window = secrets.token_hex(8)
        arguments = [window, *(value for c in counters for value in (c.limit, c.window_s * 1000))]
        answer = self._reserve(keys, arguments)
        wait_ms = int(answer[0])
        if wait_ms > 0:
            return None, max(1, -(-wait_ms // 1000))
        return (keys, [w.decode() if isinstance(w, bytes) else w for w in answer[1:]]), 0

    def release(self, held: object) -> None:
        keys, windows = held
        self._release(keys, windows)


def init_login_limits(app: Flask) -> None:
    """Keep the counters in Redis when ``REDIS_URL`` is set, else in the database."""
    url = app.config.get("REDIS_URL")
    app.extensions["fhirgate_login_counters"] = RedisCounters(url) if url else SqlCounters()


def login_throttled(submitted_email: Callable[[], object]):
    """View decorator for a login route: ``submitted_email()`` reads the e-mail as the route
    receives it (JSON or a form). Over the limit: ``TooManyRequests`` with ``retry_after``,
    which each route renders in its own error format."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            email = normalized_email(submitted_email())
            store = current_app.extensions["fhirgate_login_counters"]
            held, wait = store.reserve(counters_for(email), clock())
            if held is None:
                raise TooManyRequests(
                    f"Too many failed logins. Try again in {wait} seconds.", retry_after=wait
                )
            failed = False
            try:
                response = make_response(view(*args, **kwargs))
                failed = response.status_code == 401
            except ApiError as error:
                failed = error.status == 401
                raise
            finally:
                if not failed:
                    store.release(held)
            if response.status_code < 400 and email:
                remember_browser(response, email)
            return response

        return wrapper

    return decorate
