"""The FHIR search's fast path (``fhir.search_fast_path``): taken for the common search,
answering exactly as the Flask view does (Bundle, links and cursors, total, AuditEvent) on drawn
searches, and leaving every other search, caller and error to the view."""

from __future__ import annotations

import base64
import random
from urllib.parse import parse_qs, quote, urlsplit

import orjson
import pytest
from sqlalchemy import text

from app.extensions import db
from tests.bulk.conftest import bearer, load_patients
from tests.fhir.conftest import counted_view, toggled_get


@pytest.fixture
def view_calls(app, monkeypatch) -> list[None]:
    return counted_view(app, monkeypatch, "fhir.search")


@pytest.fixture
def store(postgres_only, app, make, client):
    """Three synthetic patients' records, and a backend's token that may search them all."""
    make.hospital("general")
    load_patients(app, "general", 3)
    auth = bearer(client, make.api_key("general", permissions=["system/*.rs"]))
    client.get("/fhir/general/Patient/sb0-p0", headers=auth)  # the worker learns the hospital
    return auth


@pytest.fixture
def get(client, app, monkeypatch):
    return toggled_get(client, app, monkeypatch, "FHIRGATE_SEARCH_FAST_PATH")


def _cursor_state(url: str) -> dict | str:
    """A paging link's cursor state but for its snapshot (AuditEvents stored between two
    requests move the hospital's newest history entry), or the URL itself."""
    query = parse_qs(urlsplit(url).query)
    if "_cursor" not in query:
        return url
    payload = query["_cursor"][0].split(".")[0]
    state = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    state.pop("s")
    return state


def _shown(response) -> tuple:
    """What a client sees, but for the Bundle's own timestamp and its cursors' snapshot."""
    body = orjson.loads(response.get_data())
    body.pop("timestamp", None)
    for link in body.get("link", []):
        link["url"] = _cursor_state(link["url"])
    headers = sorted((k, v) for k, v in response.headers.items() if k != "Content-Length")
    return response.status_code, body, headers


def _observations(app) -> list[dict]:
    from fhir.storage.sql import SqlRepository

    with app.app_context():
        bundle = SqlRepository(db.session, "general").search("Observation", [("_count", "1000")])
    return [entry["resource"] for entry in orjson.loads(bundle)["entry"]]


def _drawn_searches(app, count: int) -> list[str]:
    """Searches of the shapes the fast path takes, with values the data holds (and some it
    does not), every date prefix, sorts, counts and totals."""
    rng = random.Random(20)
    observations = _observations(app)
    searches = [
        "Observation?subject=Patient/nobody",
        "Observation?subject=sb0-p1&_sort=-date&_count=5",
        "Condition?patient=sb0-p2&_total=none",
        "Condition?patient=sb0-p2&_total=none&_count=2",
        "Encounter?patient=sb0-p1&_count=3&_sort=-_lastUpdated",
        "Observation?_id=sb0-p0-obs0",
        "Observation?code=%7Cnothing",
        "Patient?name=a",
        "Patient?family=MÜL",  # sent as UTF-8, unescaped
    ]
    for _ in range(count):
        observation = rng.choice(observations)
        patient = observation["subject"]["reference"]
        coding = observation["code"]["coding"][0]
        code = quote(f"{coding['system']}|{coding['code']}", safe="")
        when = observation.get("effectiveDateTime", "2020-01-01")[: rng.choice((4, 7, 10, 19))]
        prefix = rng.choice(("", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"))
        extra = rng.choice(
            ("", "&_sort=date", "&_sort=-date", "&_count=3", "&_total=none", "&_count=1&_sort=-date")
        )
        searches.append(
            rng.choice(
                (
                    f"Observation?patient={patient.split('/')[1]}&code={code}&date={prefix}{when}{extra}",
                    f"Observation?subject={patient}{extra}",
                    f"Observation?code={quote(coding['code'])}&date={prefix}{when}{extra}",
                    f"Observation?subject={patient}&category=laboratory{extra}",
                )
            )
        )
    return searches


def test_drawn_searches_are_answered_beneath_flask_as_the_view_answers_them(app, store, get, view_calls):
    for search in _drawn_searches(app, 60):
        path = f"/fhir/general/{search}"
        view_calls.clear()
        fast = get(True, path, headers=store)
        assert view_calls == [], search  # answered beneath Flask
        slow = get(False, path, headers=store)
        assert view_calls == [None], search
        assert fast.status_code == 200, (search, fast.get_json())
        assert _shown(fast) == _shown(slow), search


def test_resources_updated_away_or_deleted_leave_a_one_criterion_search(make, client, store, get, view_calls):
    """A search of one criterion is decided by its index rows alone (no visit to the resources
    matched): a version that no longer matches, or a deletion, must leave it at once."""
    search = "/fhir/general/Observation?subject=Patient/sb0-p0&_count=500"
    before = [e["resource"] for e in get(True, search, headers=store).get_json()["entry"]]
    moved, deleted = before[0], before[1]
    moved["subject"] = {"reference": "Patient/sb0-p1"}
    writer = bearer(client, make.api_key("general", permissions=["system/*.cruds"]))
    moved_path, deleted_path = (f"/fhir/general/Observation/{r['id']}" for r in (moved, deleted))
    assert client.put(moved_path, json=moved, headers=writer).status_code == 200
    assert client.delete(deleted_path, headers=writer).status_code in (200, 204)
    for total in ("accurate", "none"):
        view_calls.clear()
        fast = get(True, f"{search}&_total={total}", headers=store)
        assert view_calls == []
        ids = [e["resource"]["id"] for e in fast.get_json()["entry"]]
        assert len(ids) == len(before) - 2 and not {moved["id"], deleted["id"]} & set(ids)
        assert _shown(fast) == _shown(get(False, f"{search}&_total={total}", headers=store))


def test_an_id_that_is_no_fhir_id_is_never_spliced_unescaped(app, store, get, view_calls):
    """PostgreSQL splices the page's ids into the entries unescaped, trusting that stored ids are
    FHIR ids; a row that is not (written past the API) sends the search to the view, which
    escapes it."""
    search = "/fhir/general/Observation?subject=Patient/sb0-p0&_count=500"
    victim = get(True, search, headers=store).get_json()["entry"][0]["resource"]["id"]
    forged = 'x","resource":{}},{"fullUrl":"y'[:64]
    with app.app_context():
        for table, column in (("fhir_resources", "id"), ("fhir_idx_reference", "resource_id")):
            db.session.execute(
                text(
                    f"UPDATE {table} SET {column} = :forged WHERE hospital_id = 'general' AND {column} = :old"
                ),
                {"forged": forged, "old": victim},
            )
        db.session.commit()
    view_calls.clear()
    answer = get(True, search, headers=store)
    assert view_calls == [None]
    urls = [entry["fullUrl"] for entry in orjson.loads(answer.data)["entry"]]
    assert any(url.endswith("/Observation/" + forged) for url in urls)


def test_a_next_link_from_the_fast_path_pages_on(app, store, get):
    first = get(True, "/fhir/general/Observation?subject=Patient/sb0-p0&_sort=-date&_count=4", headers=store)
    bundle = first.get_json()
    assert bundle["total"] > 4 and len(bundle["entry"]) == 4
    following = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    second = get(True, following.split("localhost", 1)[1], headers=store).get_json()
    seen = [e["resource"]["id"] for e in bundle["entry"] + second["entry"]]
    assert len(set(seen)) == 8


def test_its_audit_event_lists_what_it_returned(app, store, get, recorded):
    recorded.clear()
    fast = get(True, "/fhir/general/Observation?subject=Patient/sb0-p2&_count=7", headers=store)
    slow = get(False, "/fhir/general/Observation?subject=Patient/sb0-p2&_count=7", headers=store)
    assert len(recorded) == 2
    shown = [{k: v for k, v in vars(facts).items() if k != "recorded"} for facts in recorded]
    assert shown[0] == shown[1]
    assert len(shown[0]["references"]) == 7
    assert fast.get_json()["entry"][0]["fullUrl"].endswith(shown[0]["references"][0])
    assert slow.status_code == 200


@pytest.mark.parametrize(
    "search",
    [
        "Observation?subject=Patient/sb0-p0&_include=Observation:subject",  # an include
        "Observation?subject:Patient.name=a",  # a chain
        "Observation?code:text=heart",  # a modifier
        "Observation?subject=sb0-p0,sb0-p1",  # two values
        "Observation?date=ap2020-01-01",  # ap depends on the clock
        "Observation?subject=Patient/sb0-p0&_summary=count",
        "Observation?nonsense=1",  # refused, by the view
        "Observation",  # every Observation of the hospital, counted: a heavy search
    ],
)
def test_other_searches_go_to_the_view(app, store, get, view_calls, search):
    get(True, f"/fhir/general/{search}", headers=store)
    assert view_calls == [None]


def test_a_patient_token_gets_its_compartment_as_from_the_view(app, make, client, store, get, view_calls):
    patient = bearer(client, make.patient_credential("general", "sb0-p1"))
    searches = [
        "Observation?code=%7Cnothing",
        "Observation?subject=Patient/sb0-p2",  # another patient's: nothing
        "Observation?subject=Patient/sb0-p1&_count=3&_sort=-date",
        "Condition?patient=sb0-p1",
        "Condition",  # no criteria: the compartment's Conditions
        "Observation",
        "Patient?name=a",  # only its own Patient, if it matches
        "Patient?_id=sb0-p2",
        "Practitioner?name=a",  # shared with patients: the hospital's
        "Group?type=person",  # in the compartment through its members
    ]
    for search in searches:
        view_calls.clear()
        fast = get(True, f"/fhir/general/{search}", headers=patient)
        assert view_calls == [], search
        slow = get(False, f"/fhir/general/{search}", headers=patient)
        assert fast.status_code == 200 and _shown(fast) == _shown(slow), search
    mine = get(True, "/fhir/general/Observation?subject=Patient/sb0-p2", headers=patient).get_json()
    assert mine["total"] == 0
    own = get(True, "/fhir/general/Observation?subject=Patient/sb0-p1&_count=1", headers=patient).get_json()
    assert own["total"] > 1 and own["entry"][0]["resource"]["subject"]["reference"] == "Patient/sb0-p1"


def test_narrower_callers_go_to_the_view(app, make, client, store, get, view_calls):
    patient = bearer(client, make.patient_credential("general", "sb0-p1"))
    restricted = bearer(
        client, make.api_key("general", permissions=["system/Observation.rs?category=laboratory"])
    )
    for auth, search in ((restricted, "Observation?code=%7Cnothing"), (patient, "Endpoint?name=a")):
        view_calls.clear()
        answer = get(True, f"/fhir/general/{search}", headers=auth)
        assert view_calls == [None], search
        assert answer.status_code == 200
    assert get(True, "/fhir/general/Observation?subject=Patient/sb0-p2", headers={}).status_code == 401


def test_a_slow_search_is_cancelled_and_left_to_the_view(app, store):
    """A search beyond the quick limit (production's 50 ms): the statement is cancelled, its
    connection kept, and direct reads go on (no rest after a failure)."""
    from app.direct_reads import GENERIC_PLANS, DirectReads

    with app.app_context():
        searches = DirectReads(db.engine, 50, GENERIC_PLANS)
        assert searches.run("slow", "SELECT pg_sleep(0.5)") is None
        assert searches.ready()
        assert searches.run("quick", "SELECT 1") == [("1",)]
