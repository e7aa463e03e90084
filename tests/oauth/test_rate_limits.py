"""Rate limits on the token endpoint: per client, and failures per address and claimed client (429)."""

from __future__ import annotations

import os

import pytest
import redis

from app import create_app
from app.extensions import limiter
from tests.conftest import Credential, app_config, basic_auth, token_request


@pytest.fixture
def limits(app, monkeypatch):
    monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_RATE_LIMIT", "3/minute")
    monkeypatch.setitem(app.config, "FHIRGATE_AUTH_FAILURE_LIMIT", "2/minute")


def test_a_client_over_its_rate_gets_429_with_retry_after(client, make, limits):
    make.hospital("general")
    cred = make.api_key("general")
    statuses = [token_request(client, cred).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = token_request(client, cred)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.get_json()["error"] == "temporarily_unavailable"


def test_one_clients_limit_does_not_block_another(client, make, limits):
    make.hospital("general")
    busy = make.api_key("general")
    quiet = make.api_key("general")
    for _ in range(4):
        token_request(client, busy)
    assert token_request(client, quiet).status_code == 200


def test_strangers_cannot_exhaust_a_clients_limit(client, make, limits, app, monkeypatch):
    """Client ids are not secret: failed attempts never count against the client they name."""
    monkeypatch.setitem(app.config, "FHIRGATE_AUTH_FAILURE_LIMIT", "100/minute")
    make.hospital("general")
    cred = make.api_key("general")
    for _ in range(5):
        response = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic_auth(cred.key, "wrong")
        )
        assert response.status_code == 401
    assert [token_request(client, cred).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_failed_authentication_is_limited_per_address_and_claimed_client(client, make, limits):
    make.hospital("general")
    cred, other = make.api_key("general"), make.api_key("general")
    guesses = [
        client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic_auth(f"hk_guess{i}", "x")
        ).status_code
        for i in range(3)
    ]
    assert guesses == [401, 401, 401]  # one failure for each id named
    wrong = basic_auth(cred.key, "wrong")
    statuses = [
        client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=wrong)
        for _ in range(3)
    ]
    assert [response.status_code for response in statuses] == [401, 401, 429]
    assert int(statuses[-1].headers["Retry-After"]) >= 1
    # Even the right secret waits now at this address: it is guessing this client's secret.
    assert token_request(client, cred).status_code == 429
    # The client from elsewhere, and another client from here, go on.
    elsewhere = client.application.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert token_request(elsewhere, cred).status_code == 200
    assert token_request(client, other).status_code == 200


def test_redis_backed_limits_are_shared_between_app_instances(tmp_path, make):
    """With REDIS_URL every worker counts against the same limit."""
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

    redis.Redis.from_url(redis_url).flushdb()
    config = app_config(make.app.config["SQLALCHEMY_DATABASE_URI"])
    config.update(RATELIMIT_STORAGE_URI=redis_url, FHIRGATE_TOKEN_RATE_LIMIT="2/minute")
    # Workers of one deployment share their secrets (the pepper derives from SECRET_KEY).
    config.update(SECRET_KEY=make.app.config["SECRET_KEY"], FHIRGATE_KEK=make.app.config["FHIRGATE_KEK"])
    make.hospital("general")
    cred = make.api_key("general")
    try:
        worker_a = create_app(config, instance_path=tmp_path).test_client()
        worker_b = create_app(config, instance_path=tmp_path).test_client()
        assert token_request(worker_a, cred).status_code == 200
        assert token_request(worker_b, cred).status_code == 200
        assert token_request(worker_a, cred).status_code == 429
        assert token_request(worker_b, cred).status_code == 429
    finally:
        redis.Redis.from_url(redis_url).flushdb()
        # The limiter is one object per process (one app in production): hand its
        # storage back to the suite's app.
        limiter.init_app(make.app)


def test_on_redis_the_fast_path_checks_and_counts_in_one_step(tmp_path, make):
    """The fast path's success counts once in Redis, the failure limit stops it, and a refused
    request is left to the view (which answers 429 and counts nothing)."""
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    config = app_config(make.app.config["SQLALCHEMY_DATABASE_URI"])
    config.update(RATELIMIT_STORAGE_URI=redis_url, FHIRGATE_TOKEN_RATE_LIMIT="3/minute")
    config.update(FHIRGATE_AUTH_FAILURE_LIMIT="1/minute")
    config.update(SECRET_KEY=make.app.config["SECRET_KEY"], FHIRGATE_KEK=make.app.config["FHIRGATE_KEK"])
    make.hospital("general")
    cred, other = make.api_key("general"), make.api_key("general")
    try:
        worker = create_app(config, instance_path=tmp_path)
        calls = []
        view = worker.view_functions["oauth.token"]
        worker.view_functions["oauth.token"] = lambda: calls.append(1) or view()
        client = worker.test_client()
        assert [token_request(client, cred).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert len(calls) == 2  # the first (caching the client) and the refused one
        counts = [int(store.get(key)) for key in store.keys("LIMITS:*client:*")]
        assert counts == [3]

        assert token_request(client, other).status_code == 200  # cached now
        bad = token_request(client, Credential(other.key, "wrong", other.body))
        assert bad.status_code == 401
        assert token_request(client, other).status_code == 429  # the address failed: no fast pass
    finally:
        store.flushdb()
        limiter.init_app(make.app)


def test_every_item_of_a_multi_item_limit_holds_on_both_paths(client, make, app, monkeypatch):
    monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_RATE_LIMIT", "100/minute;2/hour")
    make.hospital("general")
    cred = make.api_key("general")
    statuses = [token_request(client, cred).status_code for _ in range(3)]  # view, then fast path
    assert statuses == [200, 200, 429]
