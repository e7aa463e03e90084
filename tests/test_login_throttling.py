"""Failed logins slow down with one count per account and per address, across workers, hosts
and both login routes (the portal's ``/login`` and ``POST /api/session``), in Redis or in the
database; a stranger's failures never lock the owner's own browser out, and nobody for longer
than the window."""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from sqlalchemy import select

from app import login_limits
from app.extensions import db
from app.models import LoginFailure
from tests.conftest import BASE_URL, PASSWORD
from tests.servers import gunicorn_server, served_by
from tests.web.conftest import hidden

WORKERS = 3
LIMIT = 5
GUESSES = 30


@pytest.fixture(params=["database", "redis"])
def counters(request, monkeypatch):
    """The servers' limit, and where they keep the counts: the database, or Redis."""
    monkeypatch.setenv("FHIRGATE_LOGIN_FAILURE_LIMIT", f"{LIMIT}/minute")
    if request.param == "database":
        monkeypatch.delenv("REDIS_URL", raising=False)
        yield request.param
        return
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    store = redis.Redis.from_url(url)
    store.flushdb()
    monkeypatch.setenv("REDIS_URL", url)
    try:
        yield request.param
    finally:
        store.flushdb()


def test_guesses_spread_over_workers_and_both_routes_share_one_limit(app, make, tmp_path, counters):
    """The attacker alternates the portal form and the API, many at once, on three workers:
    exactly ``LIMIT`` guesses are checked in all, the rest are 429 in each route's format."""
    email = make.user("developer")
    log = tmp_path / "access.log"
    with gunicorn_server(app, log, WORKERS, BASE_URL) as url:
        form = requests.get(f"{url}/login", timeout=10)
        token, cookies = hidden(form.text, "csrf_token"), form.cookies.get_dict()
        first = len(served_by(log))

        def guess(i: int) -> requests.Response:
            close = {"Connection": "close"}
            if i % 2:
                fields = {"email": email, "password": f"guess {i}", "csrf_token": token}
                return requests.post(
                    f"{url}/login",
                    data=fields,
                    cookies=cookies,
                    headers=close,
                    allow_redirects=False,
                    timeout=10,
                )
            body = {"email": email, "password": f"guess {i}"}
            return requests.post(f"{url}/api/session", json=body, headers=close, timeout=10)

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(guess, range(GUESSES)))
        right = requests.post(f"{url}/api/session", json={"email": email, "password": PASSWORD}, timeout=10)
        workers = {pid for pid, _ in served_by(log)[first:]}

    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) == LIMIT, statuses
    assert statuses.count(429) == GUESSES - LIMIT, statuses
    assert len(workers) >= 2, "the guesses should have reached several workers"
    for i, answer in enumerate(answers):
        if answer.status_code != 429:
            continue
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        if i % 2:
            assert answer.headers["Content-Type"].startswith("text/html")
            assert "Too many failed logins" in answer.text
        else:
            assert answer.json()["error"] == "rate_limited" and set(answer.json()) == {"error", "message"}
    # The right password waits too: else the guessing would go on.
    assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1


def _login(client, email: str, password: str, address: str):
    body = {"email": email, "password": password}
    return client.post("/api/session", json=body, environ_base={"REMOTE_ADDR": address}).status_code


@pytest.fixture
def three_a_minute(app, monkeypatch):
    monkeypatch.setitem(app.config, "FHIRGATE_LOGIN_FAILURE_LIMIT", "3/minute")


def test_a_stranger_locks_an_account_for_the_window_only_and_never_its_owners_browser(
    app, make, three_a_minute, monkeypatch
):
    email = make.user("developer")
    owner = app.test_client()
    assert _login(owner, email, PASSWORD, "10.0.0.1") == 200  # this browser is now known
    stranger = app.test_client()
    addresses = [f"10.6.6.{i}" for i in range(5)]  # a botnet: the account's count, not the addresses'
    assert [_login(stranger, email, "guess", address) for address in addresses] == [401, 401, 401, 429, 429]

    # A browser that never logged in as the owner waits, right password or not ...
    assert _login(app.test_client(), email, PASSWORD, "10.0.0.2") == 429
    # ... but the owner's own browser logs in at once, through the API and the portal form.
    assert _login(owner, email, PASSWORD, "10.0.0.1") == 200
    owner.delete("/api/session")
    token = hidden(owner.get("/login").data, "csrf_token")
    fields = {"email": email, "password": PASSWORD, "csrf_token": token}
    assert owner.post("/login", data=fields, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 303

    # Once the window has closed, the new browser logs in too.
    later = time.time() + 61
    monkeypatch.setattr(login_limits, "clock", lambda: later)
    assert _login(app.test_client(), email, PASSWORD, "10.0.0.2") == 200


def test_the_owners_browser_has_its_own_limit(app, make, three_a_minute):
    """A known browser is no way around the limit: its failures count against it."""
    email = make.user("developer")
    owner = app.test_client()
    assert _login(owner, email, PASSWORD, "10.0.0.1") == 200
    assert [_login(owner, email, "typo", f"10.0.1.{i}") for i in range(4)] == [401, 401, 401, 429]
    assert _login(owner, email, PASSWORD, "10.0.2.1") == 429
    assert _login(app.test_client(), email, PASSWORD, "10.0.2.2") == 200  # the account was not hit


def test_a_browser_known_to_one_account_is_a_stranger_to_another(app, make, three_a_minute):
    victim, attacker = make.user("developer"), make.user("developer")
    browser = app.test_client()
    assert _login(browser, attacker, PASSWORD, "10.0.0.9") == 200
    guesses = [_login(browser, victim, "guess", f"10.7.7.{i}") for i in range(4)]
    assert guesses == [401, 401, 401, 429]
    assert _login(app.test_client(), victim, PASSWORD, "10.0.0.2") == 429


def test_the_address_count_holds_whatever_the_account(app, make, three_a_minute):
    emails = [make.user("developer") for _ in range(3)] + ["nobody@example.org"]
    client = app.test_client()
    assert [_login(client, email, "guess", "10.8.8.8") for email in emails] == [401, 401, 401, 429]
    assert _login(client, make.user("developer"), PASSWORD, "10.8.8.8") == 429


def test_only_failures_count(app, make, three_a_minute):
    email = make.user("developer")
    client = app.test_client()
    assert [_login(client, email, PASSWORD, "10.0.0.1") for _ in range(6)] == [200] * 6
    assert [_login(client, "nobody@example.org", "x", "10.0.0.1") for _ in range(2)] == [401, 401]
    assert _login(client, email, PASSWORD, "10.0.0.1") == 200


def test_database_counters_are_keyed_by_hmac_and_closed_windows_go(
    app, make, three_a_minute, monkeypatch, ctx
):
    email = make.user("developer")
    client = app.test_client()
    assert _login(client, email, "guess", "10.9.9.9") == 401
    first = set(db.session.scalars(select(LoginFailure.key)))
    assert len(first) == 2 and all(re.fullmatch("[0-9a-f]{64}", key) for key in first)
    db.session.rollback()

    later = time.time() + 120
    monkeypatch.setattr(login_limits, "clock", lambda: later)
    monkeypatch.setattr(login_limits, "PURGE_EVERY_S", 0)
    _login(client, "other@example.org", "guess", "10.9.9.8")
    now = set(db.session.scalars(select(LoginFailure.key)))
    assert len(now) == 2 and not now & first


@pytest.mark.parametrize("setting", ["100/minute;2/hour", "2/minute;2/minute"])
def test_every_item_of_the_setting_holds(app, make, monkeypatch, setting):
    monkeypatch.setitem(app.config, "FHIRGATE_LOGIN_FAILURE_LIMIT", setting)
    email = make.user("developer")
    client = app.test_client()
    assert [_login(client, email, "guess", "10.5.5.5") for _ in range(3)] == [401, 401, 429]


def test_on_redis_a_late_hand_back_never_refunds_a_newer_window():
    from app.login_limits import Counter, RedisCounters

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    store = redis.Redis.from_url(url)
    store.flushdb()
    counters = RedisCounters(url)
    counter = Counter("late-hand-back", limit=5, window_s=60)
    key = RedisCounters.PREFIX + counter.key
    try:
        first, _ = counters.reserve([counter], 0)
        store.delete(key)  # its window closed while the attempt was checked
        second, _ = counters.reserve([counter], 0)  # another attempt opens a new window
        counters.release(first)  # the first attempt succeeded: it hands back its failure
        assert int(store.hget(key, "n")) == 1  # the new window keeps the second attempt's
        counters.release(second)
        assert int(store.hget(key, "n")) == 0
    finally:
        store.flushdb()
