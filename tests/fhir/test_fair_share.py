"""Each client gets a fair share of the FHIR API; one client or one hospital cannot take it all.

The attack: cheap requests (repeated chained parameters) held every worker for 12-18 s and
delayed every other hospital's searches by about 10 s. Searches now have a cost bound checked
before they run, and every client and hospital a budget of points weighted by cost.
"""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
import redis

from app import create_app
from app.extensions import db, limiter
from fhir.fair_share import Admission, FairShare, HospitalLimits, Rate, bundle_weight, cost_of, parse_rate
from tests.conftest import app_config
from tests.fhir.conftest import FhirClient


class Clock:
    """The buckets' clock, moved by hand; requests cost their weight alone (not their time),
    so that the counts below do not depend on how fast this machine is."""

    def __init__(self, monkeypatch):
        self.now = 1_000_000.0
        monkeypatch.setattr("fhir.fair_share.time.time", lambda: self.now)
        monkeypatch.setattr("fhir.fair_share.cost_of", lambda weight, seconds: weight)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def _limit(app, monkeypatch, client: str = "1000000/minute", hospital: str = "1000000/minute") -> None:
    monkeypatch.setitem(app.config, "FHIRGATE_FHIR_CLIENT_LIMIT", client)
    monkeypatch.setitem(app.config, "FHIRGATE_FHIR_HOSPITAL_LIMIT", hospital)
    app.extensions["fhirgate_fair_share"] = FairShare(app)


def _fhir(client, make, hospital: str = "general") -> FhirClient:
    key = make.api_key(hospital, permissions=["system/*.cruds"])
    return FhirClient(client, hospital, key.body["token"])


def test_the_reviewers_repeated_chains_are_refused_before_they_run(fhir):
    chains = "&".join(f"subject:Patient.name={chr(97 + n % 26)}" for n in range(100))
    response = fhir.get(f"/Observation?{chains}")
    assert response.status_code == 400
    issue = response.get_json()["issue"][0]
    assert issue["code"] == "too-costly" and "would cost 1000 units" in issue["diagnostics"]
    # The heaviest search the bound allows still runs.
    assert (
        fhir.get("/Observation?" + "&".join(f"subject:Patient.name=x{n}" for n in range(10))).status_code
        == 200
    )


def test_a_client_over_its_share_waits_and_others_go_on(app, client, make, monkeypatch, clock):
    make.hospital("general")
    _limit(app, monkeypatch, client="100/second")
    greedy, neighbour = _fhir(client, make), _fhir(client, make)
    statuses = [greedy.get("/Patient?name=x").status_code for _ in range(15)]
    # A full bucket holds 100 points; a search costs 10 and, while it runs, holds half the bucket
    # (so no client runs many at once): six searches, then 429.
    assert statuses == [200] * 6 + [429] * 9
    refused = greedy.get("/Patient?name=x")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert refused.get_json()["issue"][0]["code"] == "throttled"
    assert neighbour.get("/Patient?name=x").status_code == 200
    clock.now += 1.0
    assert greedy.get("/Patient?name=x").status_code == 200


def test_a_search_costs_more_than_a_read(app, client, make, monkeypatch, clock):
    make.hospital("general")
    make.patient("general", "p1")
    _limit(app, monkeypatch, client="50/second")
    reader, searcher = _fhir(client, make), _fhir(client, make)
    reads = sum(reader.get("/Patient/p1").status_code == 200 for _ in range(120))
    searches = sum(searcher.get("/Patient?_id=p1").status_code == 200 for _ in range(120))
    # Half a point a read; ten a search, which needs half the bucket (25) free to start.
    assert (reads, searches) == (100, 3)


def test_a_hospital_shares_one_budget_among_its_clients(app, client, make, monkeypatch, clock):
    make.hospital("general")
    make.hospital("other")
    _limit(app, monkeypatch, client="1000/second", hospital="100/second")
    mine = [_fhir(client, make) for _ in range(5)]
    statuses = [c.get("/Patient?name=x").status_code for _ in range(3) for c in mine]
    assert statuses.count(200) == 10 and statuses.count(429) == 5
    assert _fhir(client, make, "other").get("/Patient?name=x").status_code == 200


def test_a_bundle_weighs_what_its_entries_weigh(fhir):
    entries = [
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Patient?name=x"}},
        {"request": {"method": "PUT", "url": "Patient/p1"}},
    ]
    assert bundle_weight(entries) == 0.5 + 10 + 5
    assert bundle_weight("nonsense") == 5


def test_a_request_costs_its_weight_or_its_time_beyond_the_grace():
    assert cost_of(10, 0.020) == 10  # a search slowed by a busy server pays its weight
    assert cost_of(0.5, 0.030) == pytest.approx(5)
    assert cost_of(10, 1.525) == pytest.approx(1500)


def test_a_heavy_request_holds_half_its_clients_bucket_and_pays_what_it_took(app, monkeypatch):
    now, perf = [1_000.0], [0.0]
    monkeypatch.setattr("fhir.fair_share.time.time", lambda: now[0])
    monkeypatch.setattr("fhir.fair_share.time.perf_counter", lambda: perf[0])
    share = FairShare(app)
    limits = HospitalLimits("100/second", Rate(100, 100), "10000/second", Rate(10_000, 10_000))
    first = share.admit(limits, "h", "greedy", 10, heavy=True)
    second = share.admit(limits, "h", "greedy", 10, heavy=True)
    assert isinstance(first, Admission) and isinstance(second, Admission)
    assert share.admit(limits, "h", "greedy", 10, heavy=True) == 1  # two at once, not three
    assert isinstance(share.admit(limits, "h", "other", 10, heavy=True), Admission)
    perf[0] = 0.525  # the first took 525 ms: 500 points beyond the grace
    share.settle(first)
    share.settle(second)  # and so did the second
    # 1,000 points spent, a full bucket holds 100 at 100 a second: a read's half point fits
    # 9.005 s later (Retry-After rounds up).
    assert share.admit(limits, "h", "greedy", 0.5, heavy=False) == 10
    now[0] += 9.01
    assert isinstance(share.admit(limits, "h", "greedy", 0.5, heavy=False), Admission)


def test_a_large_bundle_waits_for_a_full_bucket_not_for_ever(app, client, make, monkeypatch, clock):
    make.hospital("general")
    _limit(app, monkeypatch, client="100/second")
    fhir = _fhir(client, make)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Patient?name=x{n}"}} for n in range(30)],
    }
    assert fhir.post("", bundle).status_code == 200  # 300 points: admitted with a full bucket
    refused = fhir.post("", bundle)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 2


def test_a_hospital_may_have_its_own_limits(app, client, make, clock):
    make.hospital("general")
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "FHIRGATE_BASE_URL": "http://localhost",
    }
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "hospital", "limits", "general"]
    done = subprocess.run([*command, "--client", "20/second"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "each client 20/second" in done.stdout
    bad = subprocess.run([*command, "--client", "lots"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "not a rate" in bad.stderr
    fhir = _fhir(client, make)
    statuses = [fhir.get("/Patient?name=x").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # 20 points: two searches
    with app.app_context():
        assert parse_rate("20/second").per_second == 20


def test_with_redis_every_worker_draws_on_one_budget(tmp_path, make, clock):
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    config = app_config(make.app.config["SQLALCHEMY_DATABASE_URI"])
    config.update(RATELIMIT_STORAGE_URI=redis_url, FHIRGATE_FHIR_CLIENT_LIMIT="30/second")
    config.update(SECRET_KEY=make.app.config["SECRET_KEY"], FHIRGATE_KEK=make.app.config["FHIRGATE_KEK"])
    make.hospital("general")
    token = make.api_key("general", permissions=["system/*.cruds"]).body["token"]
    apps = [create_app(config, instance_path=tmp_path) for _ in range(2)]
    try:
        fhir = [FhirClient(worker.test_client(), "general", token) for worker in apps]
        statuses = [fhir[n % 2].get("/Patient?name=x").status_code for n in range(4)]
        assert statuses == [200, 200, 429, 429]  # 30 points; a search holds 15 while it runs
        assert store.keys("*fhir-share:client:general:*")
    finally:
        for worker in apps:  # their AuditEvents are stored now, not in the next test's tables
            worker.extensions["fhirgate_audit"].flush()
        store.flushdb()
        limiter.init_app(make.app)


def test_a_client_ignoring_retry_after_does_not_flood_the_audit_trail(app, client, make, monkeypatch, clock):
    make.hospital("general")
    _limit(app, monkeypatch, client="100/second")
    fhir = _fhir(client, make)
    statuses = [fhir.get("/Patient?name=x").status_code for _ in range(300)]
    assert statuses.count(200) == 6 and statuses.count(429) == 294
    app.extensions["fhirgate_audit"].flush()
    with app.app_context():
        from fhir.storage.sql import SqlRepository

        bundle = orjson.loads(SqlRepository(db.session, "general").search("AuditEvent", [("_count", "1000")]))
    refused = [e["resource"] for e in bundle["entry"] if e["resource"]["outcome"] != "0"]
    assert len(refused) == 2  # the first refusal, and one summary of the other 293
    assert "293 more requests over the client's share" in next(
        e["outcomeDesc"] for e in refused if "period" in e
    )


def test_a_larger_share_runs_more_heavy_requests_at_once(app, monkeypatch):
    monkeypatch.setattr("fhir.fair_share.time.time", lambda: 1_000.0)
    share = FairShare(app)
    limits = HospitalLimits("600000/minute", Rate(10_000, 10_000), "1e6/minute", Rate(1e6, 1e6))
    running = [share.admit(limits, "h", "c", 10, heavy=True) for _ in range(11)]
    # Each holds a second of work (1,000 points) of the 10,000-point bucket while it runs.
    assert [isinstance(a, Admission) for a in running] == [True] * 10 + [False]
