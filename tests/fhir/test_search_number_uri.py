"""Number and uri parameters: prefixes, precision, :below and :above (FHIR R4B search.html)."""

from __future__ import annotations

import pytest


@pytest.fixture
def risks(fhir):
    def risk(probability):
        return fhir.create(
            {
                "resourceType": "RiskAssessment",
                "status": "final",
                "subject": {"reference": "Patient/x"},
                "prediction": [{"probabilityDecimal": probability}],
            }
        )["id"]

    return {"low": risk(0.1), "mid": risk(0.45), "high": risk(0.9)}


@pytest.mark.parametrize(
    "query,expected",
    [
        ("probability=0.45", ["mid"]),
        ("probability=0.4", []),
        ("probability=0.5", ["mid"]),  # 0.5 stands for [0.45, 0.55)
        ("probability=gt0.45", ["high"]),
        ("probability=ge0.45", ["mid", "high"]),
        ("probability=lt0.45", ["low"]),
        ("probability=le0.45", ["low", "mid"]),
        ("probability=ne0.45", ["low", "high"]),
        ("probability=sa0.2", ["mid", "high"]),
        ("probability=eb0.2", ["low"]),
        ("probability=ap0.88", ["high"]),
        ("probability=ge0.1&probability=lt0.5", ["low", "mid"]),
        ("probability=0.1,0.9", ["low", "high"]),
    ],
)
def test_number_prefixes_and_precision(fhir, risks, query, expected):
    assert sorted(fhir.ids(f"RiskAssessment?{query}")) == sorted(risks[name] for name in expected)


def test_number_sort(fhir, risks):
    assert fhir.ids("RiskAssessment?_sort=-probability") == [risks["high"], risks["mid"], risks["low"]]


@pytest.fixture
def value_sets(fhir):
    def value_set(url):
        return fhir.create({"resourceType": "ValueSet", "status": "active", "url": url})["id"]

    return {
        "root": value_set("http://example.org/fhir/ValueSet"),
        "child": value_set("http://example.org/fhir/ValueSet/vitals"),
        "other": value_set("http://other.example/ValueSet/labs"),
    }


def test_uri_exact_below_and_above(fhir, value_sets):
    assert fhir.ids("ValueSet?url=http://example.org/fhir/ValueSet/vitals") == [value_sets["child"]]
    assert fhir.ids("ValueSet?url=http://example.org/fhir") == []
    below = sorted(fhir.ids("ValueSet?url:below=http://example.org/fhir"))
    assert below == sorted([value_sets["root"], value_sets["child"]])
    above = sorted(fhir.ids("ValueSet?url:above=http://example.org/fhir/ValueSet/vitals/extra"))
    assert above == sorted([value_sets["root"], value_sets["child"]])
    assert fhir.ids("ValueSet?url:below=http://example.org/fhir/%25") == []  # % is literal
