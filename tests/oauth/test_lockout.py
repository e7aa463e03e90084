"""Nobody can lock a client out knowing only its id, nor lock out a neighbour by failing.

The attacker, at one address, floods the token, introspection and revocation endpoints with
bad requests claiming the victim's client id: missing or unsupported grant types, wrong
secrets by either method, malformed assertions, repeated parameters, two methods, the wrong
content type. A failure may cost only the one who failed:

* the victim, at another address, still gets its tokens (its own per-client limit intact);
* a neighbour at the attacker's address with a valid credential of another client goes on;
* the attacker's own guessing of the victim's secret is cut off, even with the right secret.

In memory through the Flask test client (``REMOTE_ADDR``), and on Redis over a real socket
behind a trusted proxy (``X-Forwarded-For``), where the fast path's Lua script counts.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest
import redis
import requests

from app import create_app
from app.extensions import limiter
from tests.conftest import Credential, app_config, basic_auth
from tests.servers import threaded_server

ATTACKER, VICTIM_HOME, OTHER = "203.0.113.66", "198.51.100.7", "192.0.2.44"
TOKEN_LIMIT, FAILURE_LIMIT = 5, 3
GRANT = {"grant_type": "client_credentials"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# (path, form, headers) -> (status, json body, headers), sent from an address.
Post = Callable[[str, str, dict, str], tuple[int, dict, dict]]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bad_requests(victim: str) -> list[tuple[str, dict, dict]]:
    """Requests that claim ``victim`` and fail, before or at authentication."""
    form = "application/x-www-form-urlencoded"
    wrong_basic = {**basic_auth(victim, "wrong-secret"), "Content-Type": form}
    claims = orjson.dumps({"iss": victim, "sub": victim})
    forged = f"{_b64(orjson.dumps({'alg': 'ES384'}))}.{_b64(claims)}.{_b64(b'x')}"
    return [
        ("/oauth/token", {}, wrong_basic),  # no grant_type
        ("/oauth/token", {"grant_type": "password"}, wrong_basic),  # unsupported grant
        ("/oauth/token", {"grant_type": "client_credentials&grant_type=client_credentials"}, wrong_basic),
        ("/oauth/token", GRANT, wrong_basic),  # wrong secret, Basic
        ("/oauth/token", {**GRANT, "client_id": victim, "client_secret": "wrong"}, {"Content-Type": form}),
        ("/oauth/token", {**GRANT, "client_id": victim}, {"Content-Type": form}),  # no secret at all
        ("/oauth/token", {**GRANT, "client_secret": "x"}, wrong_basic),  # two methods
        (
            "/oauth/token",
            {**GRANT, "client_assertion_type": ASSERTION_TYPE, "client_assertion": forged},
            {"Content-Type": form},
        ),
        ("/oauth/token", GRANT, {**basic_auth(victim, "wrong-secret"), "Content-Type": "application/json"}),
        ("/oauth/introspect", {"token": "x"}, wrong_basic),
        ("/oauth/revoke", {"token": "x"}, wrong_basic),
        (
            "/oauth/introspect",
            {"token": "x", "client_id": victim, "client_secret": "w"},
            {"Content-Type": form},
        ),
    ]


def encode(form: dict) -> str:
    # "grant_type" carrying "&grant_type=..." repeats the parameter on purpose.
    return "&".join(f"{key}={value}" for key, value in form.items())


@dataclass
class Parties:
    victim: Credential
    neighbour: Credential
    victim_token: str


def run_attack(post: Post, parties: Parties, rounds: int = 4) -> None:
    victim, neighbour = parties.victim, parties.neighbour
    refusals = []
    for _ in range(rounds):
        for path, form, headers in bad_requests(victim.key):
            status, body, _ = post(path, encode(form), headers, ATTACKER)
            assert status in (400, 401, 413, 429), (path, form, status, body)
            refusals.append(status)
    assert refusals[:FAILURE_LIMIT] != [429] * FAILURE_LIMIT and refusals[-1] == 429

    form = "application/x-www-form-urlencoded"

    def token(cred: Credential, address: str) -> tuple[int, dict, dict]:
        return post(
            "/oauth/token",
            encode(GRANT),
            {**basic_auth(cred.key, cred.secret), "Content-Type": form},
            address,
        )

    def introspect(cred: Credential, address: str, path: str = "/oauth/introspect") -> int:
        body = encode({"token": parties.victim_token if path == "/oauth/introspect" else "not-a-token"})
        return post(path, body, {**basic_auth(cred.key, cred.secret), "Content-Type": form}, address)[0]

    # The attacker's guessing is cut off, the right secret included, on every endpoint.
    status, _, headers = token(victim, ATTACKER)
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert introspect(victim, ATTACKER) == 429
    # The victim, elsewhere, gets its whole allowance, and then its own limit holds.
    statuses = [token(victim, VICTIM_HOME)[0] for _ in range(TOKEN_LIMIT + 1)]
    assert statuses == [200] * TOKEN_LIMIT + [429], statuses
    assert introspect(victim, VICTIM_HOME) == 200
    # A neighbour behind the attacker's address, with a credential of its own, goes on.
    assert [token(neighbour, ATTACKER)[0] for _ in range(2)] == [200, 200]
    assert introspect(neighbour, ATTACKER) == 200
    assert introspect(neighbour, ATTACKER, "/oauth/revoke") == 200
    assert token(neighbour, OTHER)[0] == 200


@pytest.fixture
def parties(make) -> Parties:
    make.hospital("general")
    victim = make.api_key("general", permissions=["system/Patient.rs"])
    neighbour = make.api_key("general", permissions=["system/Patient.rs"])
    return Parties(victim, neighbour, victim.body["token"])


def limits(config) -> None:
    config["FHIRGATE_TOKEN_RATE_LIMIT"] = f"{TOKEN_LIMIT}/minute"
    config["FHIRGATE_AUTH_FAILURE_LIMIT"] = f"{FAILURE_LIMIT}/minute"


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "view"])
def test_a_flood_claiming_a_client_costs_only_the_attacker(app, parties, monkeypatch, fast):
    monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_FAST_PATH", fast)
    monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_RATE_LIMIT", f"{TOKEN_LIMIT}/minute")
    monkeypatch.setitem(app.config, "FHIRGATE_AUTH_FAILURE_LIMIT", f"{FAILURE_LIMIT}/minute")
    clients = {}

    def post(path: str, body: str, headers: dict, address: str):
        client = clients.setdefault(address, app.test_client())
        client.environ_base["REMOTE_ADDR"] = address
        response = client.post(path, data=body, headers=headers)
        return response.status_code, response.get_json(silent=True), response.headers

    run_attack(post, parties)


def test_on_redis_behind_a_proxy_a_flood_costs_only_the_attacker(make, parties, tmp_path):
    """Over a socket, two app instances sharing Redis (as workers do), the address taken from
    ``X-Forwarded-For`` with one trusted proxy."""
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    config = app_config(make.app.config["SQLALCHEMY_DATABASE_URI"])
    limits(config)
    config.update(RATELIMIT_STORAGE_URI=redis_url, FHIRGATE_TRUSTED_PROXIES=1)
    config.update(SECRET_KEY=make.app.config["SECRET_KEY"], FHIRGATE_KEK=make.app.config["FHIRGATE_KEK"])
    try:
        workers = [create_app(config, instance_path=tmp_path) for _ in range(2)]
        with threaded_server(workers[0]) as first, threaded_server(workers[1]) as second:
            session, sent = requests.Session(), []

            def post(path: str, body: str, headers: dict, address: str):
                url = (first, second)[len(sent) % 2]  # alternate workers
                sent.append(path)
                headers = {**headers, "X-Forwarded-For": address}
                response = session.post(url + path, data=body, headers=headers, timeout=10)
                try:
                    payload = response.json()
                except ValueError:
                    payload = None
                return response.status_code, payload, response.headers

            run_attack(post, parties)
        assert store.keys("LIMITS:*client:" + parties.victim.key + "*"), "counted on Redis"
    finally:
        store.flushdb()
        limiter.init_app(make.app)  # the limiter is one per process: back to the suite's app
