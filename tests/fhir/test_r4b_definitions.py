"""The search definitions are R4B's own (hl7.fhir.r4b.core 4.3.0): every type the server stores
is searchable and listed in the CapabilityStatement, R4B-only types included."""

from __future__ import annotations

import pytest

from fhir.model_classes import is_resource_type
from fhir.search.registry import resource_types

R4B_ONLY = ["Citation", "Ingredient", "SubscriptionTopic", "ClinicalUseDefinition", "NutritionProduct"]


def test_every_r4b_resource_type_is_a_searchable_type():
    """Each concrete resource class of fhir.resources.R4B, and nothing else, is a type here."""
    from fhir.resources.R4B import fhirtypes

    names = {name.removesuffix("Type") for name in dir(fhirtypes) if name.endswith("Type")}
    stored = sorted(name for name in names if is_resource_type(name))
    assert len(stored) == len(resource_types()) == 141
    assert stored == list(resource_types())
    assert not is_resource_type("Resource") and not is_resource_type("ExampleScenarioInstance")
    assert is_resource_type("Binary") and is_resource_type("SubscriptionStatus")


def test_the_capability_statement_lists_the_r4b_only_types_with_their_parameters(fhir):
    statement = fhir.client.get(f"{fhir.base}/metadata").get_json()
    listed = {r["type"]: r for r in statement["rest"][0]["resource"]}
    for name in R4B_ONLY:
        assert name in listed, name
        assert {p["name"] for p in listed[name]["searchParam"]} >= {"_id", "_lastUpdated"}
    assert "url" in {p["name"] for p in listed["SubscriptionTopic"]["searchParam"]}


@pytest.mark.parametrize(
    "resource,query",
    [
        ({"resourceType": "Citation", "status": "active", "title": "On FHIR"}, "Citation?title=on%20fhir"),
        (
            {
                "resourceType": "SubscriptionTopic",
                "url": "http://example.org/topic/admission",
                "status": "active",
            },
            "SubscriptionTopic?url=http://example.org/topic/admission",
        ),
        (
            {
                "resourceType": "Ingredient",
                "status": "active",
                "role": {"text": "active"},
                "substance": {
                    "code": {"concept": {"coding": [{"system": "http://example.org", "code": "asa"}]}}
                },
            },
            "Ingredient?substance-code=http://example.org|asa",
        ),
    ],
)
def test_an_r4b_only_type_is_found_by_its_own_parameters(fhir, resource, query):
    created = fhir.create(resource)
    other = fhir.create({**resource, **({"title": "Elsewhere"} if "title" in resource else {})})
    found = fhir.ids(query)
    assert created["id"] in found
    if "title" in resource:
        assert other["id"] not in found
