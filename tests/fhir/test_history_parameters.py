"""History at every level honours ``_since`` and ``_at`` and pages to the end, while writes go on
(FHIR R4B http.html#history): incremental sync depends on both."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from fhir.search.cursor import encode_cursor
from tests.fhir.conftest import FhirClient, patient_fhir_client

LEVELS = ["/_history", "/Patient/_history"]


def patient(family: str, **extra) -> dict:
    return {"resourceType": "Patient", "name": [{"family": family}], **extra}


def instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def versions(bundle: dict) -> list[tuple[str, str]]:
    return [
        (e["resource"]["id"], e["resource"]["meta"]["versionId"])
        for e in bundle.get("entry", [])
        if "resource" in e
    ]


def link(bundle: dict, relation: str) -> str | None:
    return next((item["url"] for item in bundle.get("link", []) if item["relation"] == relation), None)


def every_page(fhir: FhirClient, path: str, between_pages=None) -> list[dict]:
    response = fhir.get(path)
    assert response.status_code == 200, response.get_json()
    pages = [response.get_json()]
    while (following := link(pages[-1], "next")) is not None:
        if between_pages:
            between_pages()
        response = fhir.client.get(following, headers=fhir.headers())
        assert response.status_code == 200, response.get_json()
        pages.append(response.get_json())
    return pages


@pytest.mark.parametrize("level", [*LEVELS, "/Patient/kept/_history"])
def test_since_lists_exactly_the_versions_written_after_the_instant(fhir, level):
    fhir.put("/Patient/kept", patient("Before", id="kept"))
    fhir.create(patient("AlsoBefore"))
    time.sleep(0.01)
    since = datetime.now(UTC)
    time.sleep(0.01)
    changed = fhir.put("/Patient/kept", patient("After", id="kept")).get_json()
    created = fhir.create(patient("New"))

    bundle = fhir.get(f"{level}?_since={instant(since)}").get_json()

    expected = [("kept", "2")] if level.startswith("/Patient/kept") else [(created["id"], "1"), ("kept", "2")]
    assert versions(bundle) == expected
    assert changed["meta"]["versionId"] == "2"
    self_url = link(bundle, "self")
    assert "_since=" in self_url


@pytest.mark.parametrize("level", [*LEVELS, "/Patient/kept/_history"])
def test_a_since_in_the_future_lists_nothing(fhir, level):
    fhir.put("/Patient/kept", patient("Now", id="kept"))
    tomorrow = instant(datetime.now(UTC) + timedelta(days=1))
    bundle = fhir.get(f"{level}?_since={tomorrow}").get_json()
    assert versions(bundle) == []
    assert link(bundle, "next") is None


@pytest.mark.parametrize("level", [*LEVELS, "/Patient/kept/_history"])
@pytest.mark.parametrize(
    "query", ["_since=bogus", "_at=yesterday", "_since=2024-13-01", "_count=-1", "_sort=_lastUpdated", "x=1"]
)
def test_history_parameters_it_cannot_apply_are_400(fhir, level, query):
    fhir.put("/Patient/kept", patient("Now", id="kept"))
    response = fhir.get(f"{level}?{query}")
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_a_cursor_of_an_earlier_release_is_a_400(fhir, app):
    """History cursors used to carry ``n`` (the count) and no ``q`` (the parameters)."""
    fhir.put("/Patient/kept", patient("Now", id="kept"))
    fhir.put("/Patient/kept", patient("Later", id="kept"))
    bundle = fhir.get("/Patient/_history?_count=1").get_json()
    cursor = parse_qs(urlsplit(link(bundle, "next")).query)["_cursor"][0]
    payload = cursor.split(".")[0]
    state = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    old_style = {key: state[key] for key in ("h", "c", "t", "b")} | {"n": 1}
    with app.app_context():
        token = encode_cursor(old_style)
    response = fhir.get(f"/Patient/_history?_cursor={token}")
    assert response.status_code == 400
    assert "repeat the request without it" in response.get_json()["issue"][0]["diagnostics"]


def test_a_repeated_since_is_400(fhir):
    response = fhir.get("/_history?_since=2024-01-01&_since=2025-01-01")
    assert response.status_code == 400


def test_under_lenient_handling_the_self_link_leaves_out_what_history_ignored(fhir):
    fhir.put("/Patient/kept", patient("Now", id="kept"))
    response = fhir.get("/Patient/_history?x=1&_count=5", headers={"Prefer": "handling=lenient"})
    assert response.status_code == 200
    self_url = link(response.get_json(), "self")
    assert self_url.endswith("/Patient/_history?_count=5")


def test_at_lists_the_version_current_at_that_time(fhir):
    first = fhir.put("/Patient/kept", patient("One", id="kept")).get_json()
    second = fhir.put("/Patient/kept", patient("Two", id="kept")).get_json()
    third = fhir.put("/Patient/kept", patient("Three", id="kept")).get_json()
    later = fhir.create(patient("Later"))

    def at(moment: str, level: str = "/Patient/kept/_history") -> list[tuple[str, str]]:
        response = fhir.get(f"{level}?_at={moment}")
        assert response.status_code == 200, response.get_json()
        return versions(response.get_json())

    assert at(first["meta"]["lastUpdated"]) == [("kept", "1")]
    assert at(second["meta"]["lastUpdated"]) == [("kept", "2")]
    assert at(third["meta"]["lastUpdated"]) == [("kept", "3")]
    # a period holds every version current at some point in it
    assert at(str(datetime.now(UTC).year)) == [("kept", "3"), ("kept", "2"), ("kept", "1")]
    # at the second version's instant the later Patient did not exist yet
    assert (later["id"], "1") not in at(second["meta"]["lastUpdated"], "/Patient/_history")
    assert at("1999") == []


def test_a_type_history_of_more_than_200_versions_pages_each_exactly_once_while_writes_go_on(fhir):
    for n in range(120):
        fhir.put(f"/Patient/p{n % 40}", patient(f"Version{n}", id=f"p{n % 40}"))
    fhir.put("/Observation/o1", {"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
    for n in range(120, 230):
        fhir.put(f"/Patient/p{n % 40}", patient(f"Version{n}", id=f"p{n % 40}"))
    extra = iter(range(1000))

    def write_meanwhile():
        n = next(extra)
        fhir.put(f"/Patient/p{n % 40}", patient(f"Meanwhile{n}", id=f"p{n % 40}"))
        fhir.create(patient(f"New{n}"))

    pages = every_page(fhir, "/Patient/_history?_count=37", between_pages=write_meanwhile)

    seen = [v for page in pages for v in versions(page)]
    assert len(seen) == len(set(seen)) == 230
    assert all(len(versions(page)) == 37 for page in pages[:-1])
    assert {resource_id for resource_id, _ in seen} == {f"p{n}" for n in range(40)}


def test_paging_keeps_since_and_count(fhir):
    fhir.create(patient("Old"))
    time.sleep(0.01)
    since = instant(datetime.now(UTC))
    made = {fhir.create(patient(f"New{n}"))["id"] for n in range(7)}
    pages = every_page(fhir, f"/_history?_since={since}&_count=3")
    assert [len(versions(page)) for page in pages] == [3, 3, 1]
    assert {resource_id for page in pages for resource_id, _ in versions(page)} == made


def test_a_patient_tokens_history_pages_to_the_end_past_versions_it_may_not_see(fhir, make, client):
    """A resource that moved into the patient's compartment lists its old versions (another
    patient's) to nobody: they are left out of a page, but never end the paging."""
    fhir.put("/Patient/me", patient("Me", id="me"))
    fhir.put("/Patient/other", patient("Other", id="other"))

    def observation(subject: str, n: int) -> dict:
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": f"reading {n}"},
            "subject": {"reference": f"Patient/{subject}"},
        }

    mine = [fhir.create(observation("me", n))["id"] for n in range(3)]
    for n in range(7):
        fhir.put("/Observation/moved", {**observation("other", n), "id": "moved"})
    fhir.put("/Observation/moved", {**observation("me", 7), "id": "moved"})

    own = patient_fhir_client(make, client, fhir.hospital, "me")
    pages = every_page(own, "/Observation/_history?_count=4")

    seen = [v for page in pages for v in versions(page)]
    assert seen == [("moved", "8"), *[(resource_id, "1") for resource_id in reversed(mine)]]
