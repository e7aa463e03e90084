"""Refused anonymous requests are recorded without letting strangers fill a hospital's store,
and the audit trail keeps FHIR's search parameters while dropping OAuth's secrets."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests

from fhir.audit import RequestFacts, audit_event
from fhir.audit_tally import RefusalTally
from tests.servers import threaded_server

FLOOD = 600


def _stored_events(app, hospital: str) -> list[dict]:
    from app.extensions import db
    from fhir.storage.sql import SqlRepository

    app.extensions["fhirgate_audit"].flush()
    with app.app_context():
        import orjson

        bundle = SqlRepository(db.session, hospital).search("AuditEvent", [("_count", "1000")])
        return [entry["resource"] for entry in orjson.loads(bundle).get("entry", [])]


def test_an_anonymous_flood_leaves_a_handful_of_events_that_count_it(app, make):
    make.hospital("general")
    with threaded_server(app) as url, requests.Session() as session:
        target = f"{url}/fhir/general/Patient?name=x"

        def refused(n: int) -> int:
            headers = {"Authorization": "Bearer forged"} if n % 2 else {}
            return session.get(target, headers=headers, timeout=10).status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(refused, range(FLOOD)))
    assert set(statuses) == {401}

    events = _stored_events(app, "general")
    anonymous = [e for e in events if e["agent"][0]["altId"] == "anonymous"]
    assert 1 <= len(anonymous) <= 3, [e["outcomeDesc"] for e in anonymous]
    # Nothing is lost: the first is recorded as it came, the rest are counted in a summary.
    counted = sum(
        e.get("period") and int(e["outcomeDesc"].split(" for ")[1].split()[0]) or 1 for e in anonymous
    )
    assert counted == FLOOD
    summary = next(e for e in anonymous if "period" in e)
    assert summary["outcome"] == "4" and summary["agent"][0]["network"]["address"] == "127.0.0.1"
    assert "more requests without a valid token from 127.0.0.1" in summary["outcomeDesc"]


def _facts(address: str, moment: datetime, status: int = 401) -> RequestFacts:
    return RequestFacts(
        hospital_id="general",
        recorded=moment,
        interaction="search-type",
        method="GET",
        path="/fhir/general/Patient",
        query="name=x",
        status=status,
        address=address,
        client_id=None,
        client_kind=None,
        patient_id=None,
        resource_type="Patient",
        resource_id=None,
    )


def test_each_window_records_its_first_request_and_a_summary_of_the_rest():
    tally = RefusalTally(window_s=60, max_sources=100)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    recorded = [tally.admit(_facts("10.0.0.1", start + timedelta(seconds=n)), now=n) for n in range(30)]
    assert [now for now, _ in recorded] == [True] + [False] * 29
    # The window ends: the next request is recorded again, and closes the last window's summary.
    now, closed = tally.admit(_facts("10.0.0.1", start + timedelta(seconds=61)), now=61)
    assert now and len(closed) == 1 and closed[0].count == 29
    event = audit_event(closed[0])
    assert event["period"] == {"start": "2026-01-01T00:00:01.000000Z", "end": "2026-01-01T00:00:29.000000Z"}
    assert "entity" not in event or all("query" not in e for e in event["entity"])
    assert tally.due(now=200) == []  # a window of one request has nothing to sum up


def test_strangers_from_many_addresses_share_one_tally_beyond_the_limit():
    tally = RefusalTally(window_s=60, max_sources=5)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    recorded = sum(tally.admit(_facts(f"10.0.{n // 250}.{n % 250}", start), now=1)[0] for n in range(1000))
    assert recorded == 6  # five addresses, then one tally for every further address
    summaries = tally.due(now=100)
    assert [(s.address, s.count) for s in summaries] == [(None, 994)]
    assert "from further addresses" in audit_event(summaries[0])["outcomeDesc"]


def test_the_search_parameter_code_is_recorded_and_oauth_secrets_are_not(app, client, make):
    make.hospital("general")
    key = make.api_key("general", permissions=["system/*.rs"])
    headers = {"Authorization": f"Bearer {key.body['token']}"}
    client.get("/fhir/general/Observation?code=http://loinc.org|8867-4&client_secret=s3cret", headers=headers)
    client.post(
        "/fhir/general/Condition/_search",
        data={"code": "44054006", "access_token": "t0ken"},
        headers=headers,
    )
    client.get("/fhir/general/Patient/p1?code=abc", headers=headers)  # not a search: code is dropped
    events = _stored_events(app, "general")
    import base64

    queries = {
        e["subtype"][0]["code"] + " " + e["outcomeDesc"].split()[-1]: base64.b64decode(
            next(x["query"] for x in e["entity"] if "query" in x)
        ).decode()
        for e in events
        if any("query" in x for x in e.get("entity", []))
    }
    assert queries["search-type /fhir/general/Observation"] == "code=http%3A%2F%2Floinc.org%7C8867-4"
    assert queries["search-type /fhir/general/Condition/_search"] == "code=44054006"
    assert "read /fhir/general/Patient/p1" not in queries
