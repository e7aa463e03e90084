"""System search (FHIR R4B search.html#level): ``GET [base]?_type=...`` across types, each
type's part bound by the searcher's access to that type."""

from __future__ import annotations

import pytest

from tests.conftest import token_request
from tests.fhir.conftest import FhirClient, patient_fhir_client


@pytest.fixture
def records(fhir):
    for pid in ("anna", "bob"):
        fhir.put(
            f"/Patient/{pid}", {"resourceType": "Patient", "id": pid, "meta": {"tag": [{"code": "vip"}]}}
        )
    ids = {}
    for pid in ("anna", "bob"):
        ids[f"obs-{pid}"] = fhir.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": f"Patient/{pid}"},
                "meta": {"tag": [{"code": "vip"}]},
            }
        )["id"]
        ids[f"cond-{pid}"] = fhir.create(
            {"resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"}, "code": {"text": "y"}}
        )["id"]
    ids["org"] = fhir.create(
        {"resourceType": "Organization", "name": "North", "meta": {"tag": [{"code": "vip"}]}}
    )["id"]
    return ids


def found(bundle: dict) -> set[tuple[str, str]]:
    return {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "match"
    }


def test_type_lists_the_types_searched_with_their_common_parameters(fhir, records):
    bundle = fhir.search("?_type=Observation,Condition&patient=Patient/anna")
    assert found(bundle) == {("Observation", records["obs-anna"]), ("Condition", records["cond-anna"])}
    assert bundle["total"] == 2
    self_url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert "_type=Observation%2CCondition" in self_url and "patient=Patient%2Fanna" in self_url
    tagged = found(fhir.search("?_tag=vip"))
    assert tagged == {
        ("Patient", "anna"),
        ("Patient", "bob"),
        ("Observation", records["obs-anna"]),
        ("Observation", records["obs-bob"]),
        ("Organization", records["org"]),
    }
    assert found(fhir.search("?_type=Patient&_id=bob")) == {("Patient", "bob")}
    everywhere = fhir.search("?_id=bob")
    assert next(link["url"] for link in everywhere["link"] if link["relation"] == "self").endswith("?_id=bob")
    posted = fhir.client.post(
        f"/fhir/{fhir.hospital}/_search",
        data={"_type": "Condition", "patient": "Patient/bob"},
        headers=fhir.headers(),
    )
    assert posted.status_code == 200
    assert found(posted.get_json()) == {("Condition", records["cond-bob"])}


def test_a_system_search_pages_across_types(fhir, records):
    bundle = fhir.search("?_type=Observation,Condition,Patient&_count=2")
    seen = [*found(bundle)]
    while nxt := next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None):
        response = fhir.client.get(nxt, headers=fhir.headers())
        assert response.status_code == 200
        bundle = response.get_json()
        seen += found(bundle)
    assert len(seen) == len(set(seen)) == 6


@pytest.mark.parametrize(
    "query",
    [
        "?_type=Observation,Organization&patient=Patient/anna",  # Organization has no patient
        "?code=x",  # without _type only the parameters of every type
        "?_type=Nothing",
        "?_type=Observation&_include=Observation:subject",
        "?_type=Observation&_sort=date",
    ],
)
def test_what_a_system_search_cannot_apply_is_refused(fhir, records, query):
    response = fhir.get(f"/{query}")
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_lenient_handling_leaves_a_parameter_out_for_every_type(fhir, records):
    response = fhir.get(
        "/?_type=Observation,Organization&patient=Patient/anna", headers={"Prefer": "handling=lenient"}
    )
    assert response.status_code == 200
    bundle = response.get_json()
    assert ("Organization", records["org"]) in found(bundle)
    assert ("Observation", records["obs-bob"]) in found(bundle)  # patient= applied to none
    self_url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert "patient" not in self_url


def test_a_patient_token_sees_only_its_own_compartment_in_a_system_search(fhir, make, client, records):
    anna = patient_fhir_client(make, client, fhir.hospital, "anna")
    bundle = anna.search("?_type=Observation,Condition,Patient")
    assert found(bundle) == {
        ("Patient", "anna"),
        ("Observation", records["obs-anna"]),
        ("Condition", records["cond-anna"]),
    }
    assert ("Observation", records["obs-bob"]) not in found(anna.search("?_tag=vip"))
    assert found(anna.search("?_id=bob")) == set()


def test_a_type_the_token_may_not_search_is_forbidden(fhir, make, client, records):
    key = make.api_key(fhir.hospital, permissions=["system/Patient.rs"])
    narrow = FhirClient(client, fhir.hospital, token_request(client, key).get_json()["access_token"])
    assert narrow.get("/?_type=Patient,Observation").status_code == 403
    # without _type: only the types it may search
    assert found(narrow.search("?_tag=vip")) == {("Patient", "anna"), ("Patient", "bob")}


def test_a_chain_reaches_the_same_resources_as_in_a_type_search(fhir, make, client, records):
    """The types searched need search scopes; a type a chain reaches is seen as in a type search."""
    key = make.api_key(fhir.hospital, permissions=["system/Observation.rs", "system/Patient.r"])
    token = token_request(client, key).get_json()["access_token"]
    limited = FhirClient(client, fhir.hospital, token)
    by_type = limited.ids("Observation?subject:Patient._id=anna")
    assert by_type == [records["obs-anna"]]
    system = limited.search("?_type=Observation&subject:Patient._id=anna")
    assert found(system) == {("Observation", records["obs-anna"])}


def test_a_system_search_costs_its_parameters_once_per_type(fhir, records):
    assert fhir.get("/?_tag=vip&_lastUpdated=gt2000").status_code == 200  # ~140 types: within twice a search
    costly = fhir.get("/?_tag:not=vip")  # a scanning modifier on every type
    assert costly.status_code == 400
    assert costly.get_json()["issue"][0]["code"] == "too-costly"
    assert fhir.get("/?_type=Observation,Condition&_tag:not=vip").status_code == 200
