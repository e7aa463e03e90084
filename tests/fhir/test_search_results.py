"""Search results: sorting, paging, totals, summaries, elements, includes and chaining."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture
def people(fhir):
    org = fhir.create({"resourceType": "Organization", "name": "General Hospital"})
    doctor = fhir.create({"resourceType": "Practitioner", "name": [{"family": "House"}]})
    patients = {}
    for family, born in (("Adams", "1990-01-01"), ("Baker", "1970-06-15"), ("Clark", "1985-03-03")):
        patients[family] = fhir.create(
            {
                "resourceType": "Patient",
                "name": [{"family": family}],
                "birthDate": born,
                "managingOrganization": {"reference": f"Organization/{org['id']}"},
                "generalPractitioner": [{"reference": f"Practitioner/{doctor['id']}"}],
            }
        )
    encounters = {
        family: fhir.create(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": f"Patient/{patient['id']}"},
                "period": {"start": "2024-02-01T09:00:00Z", "end": "2024-02-01T10:00:00Z"},
            }
        )
        for family, patient in patients.items()
    }
    return {"org": org, "doctor": doctor, "patients": patients, "encounters": encounters}


def families(bundle) -> list[str]:
    return [e["resource"]["name"][0]["family"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def test_sort_by_string_and_by_date_both_directions(fhir, people):
    assert families(fhir.search("Patient?_sort=family")) == ["Adams", "Baker", "Clark"]
    assert families(fhir.search("Patient?_sort=-family")) == ["Clark", "Baker", "Adams"]
    assert families(fhir.search("Patient?_sort=birthdate")) == ["Baker", "Clark", "Adams"]
    assert families(fhir.search("Patient?_sort=-birthdate")) == ["Adams", "Clark", "Baker"]


def test_sort_by_several_keys(fhir, people):
    fhir.create({"resourceType": "Patient", "name": [{"family": "Baker"}], "birthDate": "2000-01-01"})
    bundle = fhir.search("Patient?_sort=family,-birthdate")
    births = [(e["resource"]["name"][0]["family"], e["resource"]["birthDate"]) for e in bundle["entry"]]
    assert births == [
        ("Adams", "1990-01-01"),
        ("Baker", "2000-01-01"),
        ("Baker", "1970-06-15"),
        ("Clark", "1985-03-03"),
    ]


def test_total_summary_count_and_elements(fhir, people):
    bundle = fhir.search("Patient")
    assert bundle["type"] == "searchset" and bundle["total"] == 3
    assert all(e["fullUrl"] == f"{fhir.base_url}/Patient/{e['resource']['id']}" for e in bundle["entry"])
    summary = fhir.search("Patient?_summary=count")
    assert summary["total"] == 3 and summary.get("entry", []) == []
    assert "total" not in fhir.search("Patient?_count=1&_total=none")
    subset = fhir.search("Patient?_elements=birthDate")["entry"][0]["resource"]
    assert set(subset) == {"resourceType", "id", "meta", "birthDate"}
    assert subset["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_include_and_revinclude(fhir, people):
    bundle = fhir.search(
        "Patient?family=Adams&_include=Patient:organization&_include=Patient:general-practitioner"
    )
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]}
    assert modes == {("Patient", "match"), ("Organization", "include"), ("Practitioner", "include")}
    assert bundle["total"] == 1
    rev = fhir.search("Patient?family=Adams&_revinclude=Encounter:subject")
    included = [e["resource"]["id"] for e in rev["entry"] if e["search"]["mode"] == "include"]
    assert included == [people["encounters"]["Adams"]["id"]]


def test_include_with_target_type(fhir, people):
    bundle = fhir.search("Encounter?_include=Encounter:subject:Patient")
    assert sum(e["search"]["mode"] == "include" for e in bundle["entry"]) == 3
    none = fhir.search("Encounter?_include=Encounter:subject:Group")
    assert sum(e["search"]["mode"] == "include" for e in none["entry"]) == 0


def test_chaining_one_level(fhir, people):
    adams = people["encounters"]["Adams"]["id"]
    assert fhir.ids("Encounter?subject:Patient.family=adams") == [adams]
    assert fhir.ids("Encounter?patient.family=adams") == [adams]
    assert fhir.ids("Encounter?subject:Patient.birthdate=lt1980") == [people["encounters"]["Baker"]["id"]]
    org = people["org"]["id"]
    assert len(fhir.ids(f"Patient?organization.name=general&_id={people['patients']['Clark']['id']}")) == 1
    assert fhir.ids(f"Patient?organization:Organization.name=nowhere&organization={org}") == []


def test_post_search_equals_get(fhir, people):
    response = fhir.post("/Patient/_search", "family=Baker", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert families(response.get_json()) == ["Baker"]
    assert fhir.post("/Patient/_search", "{}", content_type="application/json").status_code == 415


def test_paging_yields_each_match_once_while_resources_are_added(fhir):
    response = fhir.post("/", _transaction([{"family": f"P{i:03d}"} for i in range(250)])).get_json()
    created = {e["response"]["location"].split("/")[1] for e in response["entry"]}
    assert len(created) == 250
    first = fhir.search("Patient?_count=50&_sort=family")
    assert first["total"] == 250 and len(first["entry"]) == 50
    seen = [e["resource"]["id"] for e in first["entry"]]
    url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    pages = 1
    while url:
        # Someone adds patients (sorting first and last) between every two pages.
        fhir.create({"resourceType": "Patient", "name": [{"family": "AAA"}]})
        fhir.create({"resourceType": "Patient", "name": [{"family": "ZZZ"}]})
        bundle = fhir.client.get(url.replace("http://localhost", ""), headers=fhir.headers()).get_json()
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        pages += 1
    assert pages == 5
    assert len(seen) == 250 and set(seen) == created


def test_previous_link_and_count_limits(fhir, people):
    first = fhir.search("Patient?_count=2&_sort=family")
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = fhir.client.get(next_url.replace("http://localhost", ""), headers=fhir.headers()).get_json()
    assert families(second) == ["Clark"]
    previous = next(link["url"] for link in second["link"] if link["relation"] == "previous")
    back = fhir.client.get(previous.replace("http://localhost", ""), headers=fhir.headers()).get_json()
    assert families(back) == ["Adams", "Baker"]
    assert len(fhir.search("Patient?_count=5000")["entry"]) == 3  # clamped to 1000, not an error
    assert fhir.search("Patient?_count=0").get("entry", []) == []


def test_tampered_cursor_is_400(fhir, people):
    first = fhir.search("Patient?_count=1")
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    tampered = next_url[:-3] + ("AAA" if not next_url.endswith("AAA") else "BBB")
    assert (
        fhir.client.get(tampered.replace("http://localhost", ""), headers=fhir.headers()).status_code == 400
    )


def _transaction(names: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "name": [n]},
                "request": {"method": "POST", "url": "Patient"},
            }
            for n in names
        ],
    }


def test_parallel_searches_do_not_interfere(fhir, people, app):
    results, errors = [], []

    def worker():
        try:
            client = app.test_client()
            response = client.get("/fhir/general/Patient?_sort=family", headers=fhir.headers())
            results.append(families(response.get_json()))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and results == [["Adams", "Baker", "Clark"]] * 4
