"""``_summary`` and ``_elements`` on searches and reads (FHIR R4B search.html#summary,
#elements): applied, never silently ignored; a subset keeps the mandatory elements and says
it is one (the SUBSETTED tag)."""

from __future__ import annotations

import pytest

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Anna</div>'}


@pytest.fixture
def anna(fhir):
    return fhir.create(
        {
            "resourceType": "Patient",
            "text": NARRATIVE,
            "name": [{"family": "Anna"}],
            "gender": "female",
            "maritalStatus": {"text": "married"},  # not a summary element
            "contact": [{"name": {"family": "Ben"}}],  # not a summary element
            "communication": [{"language": {"text": "German"}}],  # not a summary element
        }
    )


@pytest.fixture
def reading(fhir, anna):
    return fhir.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "_status": {"extension": [{"url": "http://example.org/why", "valueString": "checked"}]},
            "code": {"text": "weight"},
            "subject": {"reference": f"Patient/{anna['id']}"},
            "valueQuantity": {"value": 61.5, "unit": "kg"},
            "note": [{"text": "after lunch"}],  # not a summary element
        }
    )


def first_match(fhir, query: str) -> dict:
    bundle = fhir.search(query)
    return next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match")


def read(fhir, path: str) -> dict:
    response = fhir.get(path)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("how", ["search", "read"])
def test_summary_true_keeps_the_summary_elements_only(fhir, anna, how):
    got = (
        first_match(fhir, "Patient?_summary=true")
        if how == "search"
        else read(fhir, f"/Patient/{anna['id']}?_summary=true")
    )

    assert {"name", "gender", "id", "meta", "resourceType"} <= set(got)
    assert not {"maritalStatus", "contact", "communication", "text"} & set(got)
    assert SUBSETTED in got["meta"]["tag"]


@pytest.mark.parametrize("how", ["search", "read"])
def test_summary_text_keeps_the_narrative_and_the_mandatory_elements(fhir, reading, how):
    path = f"/Observation/{reading['id']}?_summary=text"
    got = first_match(fhir, "Observation?_summary=text") if how == "search" else read(fhir, path)

    assert set(got) == {"resourceType", "id", "meta", "status", "_status", "code"}
    assert SUBSETTED in got["meta"]["tag"]


@pytest.mark.parametrize("how", ["search", "read"])
def test_summary_data_leaves_out_the_narrative_only(fhir, anna, how):
    got = (
        first_match(fhir, "Patient?_summary=data")
        if how == "search"
        else read(fhir, f"/Patient/{anna['id']}?_summary=data")
    )

    assert "text" not in got
    assert {"maritalStatus", "contact", "communication", "name", "gender"} <= set(got)
    assert SUBSETTED in got["meta"]["tag"]


def test_summary_false_is_the_whole_resource(fhir, anna):
    got = read(fhir, f"/Patient/{anna['id']}?_summary=false")
    assert got["text"] == NARRATIVE and "tag" not in got["meta"]


@pytest.mark.parametrize("how", ["search", "read"])
def test_elements_keep_the_named_and_the_mandatory_elements(fhir, reading, how):
    path = f"/Observation/{reading['id']}?_elements=note"
    got = first_match(fhir, "Observation?_elements=note") if how == "search" else read(fhir, path)

    # status and code are mandatory (1..1): kept, with status's extension sibling
    assert set(got) == {"resourceType", "id", "meta", "status", "_status", "code", "note"}
    assert SUBSETTED in got["meta"]["tag"]


def test_elements_name_a_choice_by_its_stem_or_a_variant_and_may_carry_the_type(fhir, reading):
    by_stem = read(fhir, f"/Observation/{reading['id']}?_elements=value")
    by_variant = read(fhir, f"/Observation/{reading['id']}?_elements=Observation.valueQuantity")
    assert by_stem["valueQuantity"] == by_variant["valueQuantity"] == {"value": 61.5, "unit": "kg"}


@pytest.mark.parametrize(
    "query",
    ["_summary=maybe", "_elements=nosuchelement", "_elements=Patient.nosuch", "_summary=count"],
)
def test_a_read_refuses_what_it_cannot_apply(fhir, anna, query):
    response = fhir.get(f"/Patient/{anna['id']}?{query}")
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_a_read_refuses_other_parameters_unless_lenient(fhir, anna):
    assert fhir.get(f"/Patient/{anna['id']}?name=x").status_code == 400
    lenient = fhir.get(f"/Patient/{anna['id']}?name=x", headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200 and lenient.get_json()["name"] == [{"family": "Anna"}]


@pytest.mark.parametrize("query", ["Patient?_summary=maybe", "Patient?_elements=nosuchelement"])
def test_a_search_refuses_what_it_cannot_apply(fhir, anna, query):
    assert fhir.get(f"/{query}").status_code == 400


def test_under_lenient_handling_an_unknown_element_is_left_out_of_the_self_link(fhir, anna):
    response = fhir.get("/Patient?_elements=nosuch&gender=female", headers={"Prefer": "handling=lenient"})
    bundle = response.get_json()
    self_url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert self_url.endswith("/Patient?gender=female")


def test_a_subset_carries_no_validator_and_is_never_a_304(fhir, anna):
    """Its ETag would name the whole version: a later conditional read would keep the subset."""
    whole = fhir.get(f"/Patient/{anna['id']}")
    subset = fhir.get(f"/Patient/{anna['id']}?_summary=true")
    assert "ETag" not in subset.headers and "Last-Modified" not in subset.headers
    again = fhir.get(f"/Patient/{anna['id']}?_summary=true", headers={"If-None-Match": whole.headers["ETag"]})
    assert again.status_code == 200 and SUBSETTED in again.get_json()["meta"]["tag"]


def test_a_subset_validates_as_the_resource_type(fhir, reading):
    from fhir.resources.R4B.observation import Observation

    for query in ("_summary=true", "_summary=text", "_summary=data", "_elements=note"):
        Observation.model_validate(read(fhir, f"/Observation/{reading['id']}?{query}"))
