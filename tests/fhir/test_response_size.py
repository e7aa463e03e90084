"""What one request may make the server hold: Bundle read limits and page byte budgets."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from fhir import bundles, response_size
from tests.fhir.test_bundles import bundle, entry


def _observation(i: int, note: str = "") -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": f"obs {i}"},
        "subject": {"reference": "Patient/p1"},
        "note": [{"text": note or "x"}],
    }


@pytest.fixture
def stored(fhir):
    """Patient p1 and twelve Observations of about 1 KB each."""
    fhir.put("/Patient/p1", {"resourceType": "Patient", "id": "p1"})
    entries = [entry(_observation(i, "n" * 900)) for i in range(12)]
    assert fhir.post("/", bundle("transaction", *entries)).status_code == 200
    return fhir


def _follow(fhir, bundle_json: dict) -> str | None:
    link = next((k["url"] for k in bundle_json["link"] if k["relation"] == "next"), None)
    if link is None:
        return None
    parts = urlsplit(link)
    return parts.path.removeprefix(fhir.base) + "?" + parts.query


def _pages(fhir, path: str) -> list[list[str]]:
    pages = []
    while path:
        response = fhir.get(path)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        pages.append([e["resource"]["id"] for e in body.get("entry", []) if "resource" in e])
        path = _follow(fhir, body)
    return pages


def test_a_search_page_ends_at_its_byte_budget_and_goes_on_where_it_stopped(stored, monkeypatch):
    everything_at_once = _pages(stored, "/Observation?_count=100")
    assert [len(page) for page in everything_at_once] == [12]
    monkeypatch.setattr(response_size, "MAX_PAGE_BYTES", 5_000)
    pages = _pages(stored, "/Observation?_count=100")
    assert all(1 <= len(page) <= 5 for page in pages) and len(pages) >= 3
    assert [i for page in pages for i in page] == everything_at_once[0]


def test_a_single_resource_larger_than_the_budget_still_makes_a_page(stored, monkeypatch):
    monkeypatch.setattr(response_size, "MAX_PAGE_BYTES", 10)
    pages = _pages(stored, "/Observation?_count=100")
    assert [len(page) for page in pages] == [1] * 12


def test_includes_count_against_the_page(stored, monkeypatch):
    monkeypatch.setattr(response_size, "MAX_PAGE_BYTES", 3_000)
    seen = []
    path = "/Observation?_count=100&_include=Observation:subject"
    while path:
        body = stored.get(path).get_json()
        matches = [e for e in body["entry"] if e["search"]["mode"] == "match"]
        included = [e for e in body["entry"] if e["search"]["mode"] == "include"]
        assert matches and [e["resource"]["id"] for e in included] == ["p1"]
        seen += [e["resource"]["id"] for e in matches]
        path = _follow(stored, body)
    assert len(seen) == len(set(seen)) == 12


def test_history_and_everything_pages_end_at_the_budget_with_a_next_link(stored, monkeypatch):
    whole = _pages(stored, "/Observation/_history?_count=100")
    assert len(whole) == 1 and len(whole[0]) == 12
    monkeypatch.setattr(response_size, "MAX_PAGE_BYTES", 5_000)
    history = _pages(stored, "/Observation/_history?_count=100")
    assert len(history) > 2 and [i for page in history for i in page] == whole[0]
    assert len(_pages(stored, "/_history?_count=5")) > 2

    everything = _pages(stored, "/Patient/p1/$everything?_count=100")
    assert len(everything) > 2
    ids = [i for page in everything for i in page]
    assert len(ids) == len(set(ids)) == 13


def test_history_pages_follow_each_other_without_gaps(stored):
    """History had no next link: ``_count`` cut it silently. Pages of 5 now cover all 13."""
    pages = _pages(stored, "/_history?_count=5")
    assert [len(page) for page in pages] == [5, 5, 3]
    other = stored.get("/Observation/_history?_count=5").get_json()
    cursor = _follow(stored, other).split("?", 1)[1]
    assert stored.get(f"/Patient/_history?{cursor}").status_code == 400


def test_a_batch_asking_for_too_many_resources_is_refused_before_it_runs(stored):
    reads = [entry(method="GET", url="Observation?_count=1000") for _ in range(6)]
    response = stored.post("/", bundle("batch", *reads))
    assert response.status_code == 413
    issue = response.get_json()["issue"][0]
    assert issue["code"] == "too-costly" and "6,000" in issue["diagnostics"]
    many = [entry(method="GET", url="Patient/p1") for _ in range(response_size.MAX_BUNDLE_READ_ENTRIES + 1)]
    assert stored.post("/", bundle("batch", *many)).status_code == 413
    defaults = [entry(method="GET", url="Observation?code:text=obs") for _ in range(250)]
    assert stored.post("/", bundle("transaction", *defaults)).status_code == 200
    assert stored.post("/", bundle("transaction", *defaults, defaults[0])).status_code == 413


def test_a_batch_whose_reads_answer_too_much_is_refused_and_stores_nothing(stored, monkeypatch):
    monkeypatch.setattr(bundles, "MAX_BUNDLE_READ_BYTES", 20_000)
    reads = [entry(method="GET", url="Observation?_count=10") for _ in range(3)]
    written = entry({"resourceType": "Patient", "id": "p2"}, method="PUT", url="Patient/p2")
    response = stored.post("/", bundle("batch", written, *reads))
    assert response.status_code == 413
    assert "20,000 bytes" in response.get_json()["issue"][0]["diagnostics"]
    assert stored.get("/Patient/p2").status_code == 404
    assert stored.post("/", bundle("batch", written, *reads[:1])).status_code == 200


def test_batch_entries_are_spliced_as_before(stored):
    response = stored.post(
        "/",
        bundle(
            "batch",
            entry(method="GET", url="Patient/p1"),
            entry(method="GET", url="Observation?_count=2"),
            entry(method="GET", url="Patient/nope"),
            entry({"resourceType": "Patient", "id": "p3"}, method="PUT", url="Patient/p3"),
        ),
    )
    body = response.get_json()
    read, search, missing, written = body["entry"]
    assert read["resource"]["id"] == "p1" and read["response"] == {
        "status": "200 OK",
        "etag": 'W/"1"',
        "lastModified": read["resource"]["meta"]["lastUpdated"],
    }
    assert read["fullUrl"].endswith("/Patient/p1")
    assert search["resource"]["type"] == "searchset" and len(search["resource"]["entry"]) == 2
    assert missing["response"]["status"] == "404" and missing["response"]["outcome"]["issue"]
    assert written["response"]["location"] == "Patient/p3/_history/1"


def test_the_audit_event_names_what_a_bundle_response_carried(stored, app, make):
    """Noted while the response is spliced, no longer parsed back out of it."""
    stored.post(
        "/",
        bundle(
            "batch",
            entry(method="GET", url="Patient/p1"),
            entry({"resourceType": "Patient", "id": "p4"}, method="PUT", url="Patient/p4"),
            entry(method="GET", url="Patient/nope"),
        ),
    )
    stored.get("/Observation/_history?_count=3")
    app.extensions["fhirgate_audit"].flush()
    admin = make.as_role("hospital-admin", "general")
    events = admin.get("/api/hospitals/general/audit-events?interaction=transaction").get_json()
    assert [sorted(e["resources"]) for e in events][:1] == [["Patient/p1", "Patient/p4"]]
    history = admin.get("/api/hospitals/general/audit-events?interaction=history-type").get_json()
    assert len(history[0]["resources"]) == 3
