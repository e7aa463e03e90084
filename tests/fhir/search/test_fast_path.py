"""The direct JSON walk gives what fhirpathpy gives, for every parameter it handles."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from fhir.search.extract import CONVERTERS, IndexValues
from fhir.search.index_paths import compile_fast, compile_fhirpath
from fhir.search.index_values import reference_type
from fhir.search.registry import indexed_params, resource_types, split_union
from tests.fhir.search.corpus import CORPUS

RESOLVE = re.compile(r"\.where\(resolve\(\) is (\w+)\)$")
REQUIRED = {
    "Patient",
    "Observation",
    "Condition",
    "Encounter",
    "MedicationRequest",
    "Practitioner",
    "Organization",
    "Immunization",
    "AllergyIntolerance",
    "Procedure",
    "DiagnosticReport",
}


def fhirpathpy_twin(part: str) -> tuple[str, str | None]:
    """Rewrite a part so fhirpathpy evaluates it: ``as`` becomes ``ofType``, resolve() is split off.

    fhirpathpy's ``as`` raises on more than one item (the spec applies it to collections such
    as ``useContext.value``), and it does not implement ``resolve()``.
    """
    part = re.sub(r"^\(([\w.]+) as (\w+)\)", r"\1.ofType(\2)", part)
    part = re.sub(r"^([\w.]+) as (\w+)$", r"\1.ofType(\2)", part)
    part = part.replace(".as(", ".ofType(")
    match = RESOLVE.search(part)
    return (part[: match.start()], match[1]) if match else (part, None)


def comparable(value: Any) -> Any:
    """fhirpathpy turns decimals into Decimal; the walk keeps the JSON float."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def fast_parts(resource_type: str):
    for param in indexed_params(resource_type).values():
        for part in split_union(param.expression):
            if (fast := compile_fast(part, resource_type)) is not None:
                yield param, part, fast


def test_the_corpus_covers_the_common_clinical_types():
    assert {r["resourceType"] for r in CORPUS} >= REQUIRED
    observations = [r for r in CORPUS if r["resourceType"] == "Observation"]
    for key in ("valueQuantity", "valueCodeableConcept", "component", "effectivePeriod"):
        assert any(key in r for r in observations), key


@pytest.mark.parametrize("resource", CORPUS, ids=lambda r: f"{r['resourceType']}/{r['id']}")
def test_fast_path_equals_fhirpathpy(resource):
    resource_type = resource["resourceType"]
    for param, part, fast in fast_parts(resource_type):
        expression, resolve_is = fhirpathpy_twin(part)
        expected = compile_fhirpath(expression)(resource)
        if resolve_is:
            expected = [(v, t) for v, t in expected if reference_type(v) == resolve_is]
        found = fast(resource)
        assert [comparable(v) for v, _ in found] == [comparable(v) for v, _ in expected], (param.code, part)
        # The walk passes FHIR types to the converters; fhirpathpy's values are typed by shape.
        by_walk, by_fhirpathpy = IndexValues(), IndexValues()
        CONVERTERS[param.type](param.code, found, by_walk)
        CONVERTERS[param.type](param.code, expected, by_fhirpathpy)
        assert by_walk == by_fhirpathpy, (param.code, part)


def test_the_comparison_exercises_many_parameters():
    compared = non_empty = 0
    seen: set[str] = set()
    for resource in CORPUS:
        for param, _, fast in fast_parts(resource["resourceType"]):
            compared += 1
            if fast(resource):
                non_empty += 1
                seen.add(param.url)
    print(
        f"\nfast path vs fhirpathpy: {compared} evaluations, {non_empty} with values, {len(seen)} parameters"
    )
    assert non_empty >= 400 and len(seen) >= 250


def test_fast_path_covers_nearly_every_expression():
    total = fast = 0
    slow = []
    for name in resource_types():
        for param in indexed_params(name).values():
            for part in split_union(param.expression):
                total += 1
                if compile_fast(part, name) is not None:
                    fast += 1
                else:
                    slow.append(f"{name}.{param.code}: {part}")
    print(f"\nfast path: {fast} of {total} expression parts; fhirpathpy for:\n  " + "\n  ".join(slow))
    assert fast / total > 0.99


@pytest.mark.parametrize(
    ("part", "simple"),
    [
        ("Observation.code", True),
        ("Observation.effective", True),
        ("(Observation.value as Quantity)", True),
        ("Observation.value.as(Quantity)", True),
        ("Observation.value.ofType(CodeableConcept)", True),
        ("(Observation.value as CodeableConcept).text", True),
        ("Observation.subject.where(resolve() is Patient)", True),
        ("Observation.code.coding.where(system='http://loinc.org')", True),
        ("Observation.value.as(Attachment)", False),  # not one of the choices
        ("Observation.value.code", False),  # a choice walked through without its type
        ("Observation.code.exists()", False),
        ("Observation.extension('http://x').value", False),
        ("Observation.component[0].code", False),
        ("Patient.name", False),  # another type's root
        ("Observation.value.exists() and Observation.value != false", True),
    ],
)
def test_which_expressions_take_the_fast_path(part, simple):
    assert (compile_fast(part, "Observation") is not None) is simple
