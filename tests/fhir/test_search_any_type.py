"""Search works for types nobody hand-picked: chosen at random (seeded) from the definitions.

For each chosen type the test builds a valid resource from the R4B model's own field
metadata, sets every top-level element that one of the type's search parameters indexes,
stores it through the API, and checks that each parameter finds it with a matching value
and misses it with a different one.
"""

from __future__ import annotations

import random
import re
from urllib.parse import quote

import pytest

from fhir.resources.R4B import get_fhir_model_class
from fhir.search.registry import indexed_params, resource_types

SEED = 20261123
HAND_PICKED = {
    "Patient",
    "Observation",
    "Condition",
    "Encounter",
    "MedicationRequest",
    "Practitioner",
    "Organization",
    "AllergyIntolerance",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "Bundle",
    "Parameters",
    "Binary",
}


def _element_kind(annotation) -> tuple[str, bool]:
    """The FHIR type name of a field's annotation and whether it is a list."""
    text = str(annotation)
    is_list = "List[" in text
    primitive = re.search(r"Annotated\[str, (\w+)\(\)\]|Annotated\[\w+, (\w+)\(\)\]", text)
    if primitive:
        name = primitive.group(1) or primitive.group(2)
        return name[0].lower() + name[1:], is_list
    complex_ = re.search(r"abc\.(\w+?)Type", text)
    if complex_:
        return complex_.group(1), is_list
    if "bool" in text:
        return "boolean", is_list
    return "", is_list


SAMPLES = {
    # kind: (stored value, matching query, non-matching query, search type)
    "string": ("Zebra Delta", "zebra", "yak"),
    "markdown": ("Zebra Delta", "zebra", "yak"),
    "code": (None, None, "no-such-code"),
    "uri": ("http://example.org/zebra", "http://example.org/zebra", "http://example.org/yak"),
    "url": ("http://example.org/zebra", "http://example.org/zebra", "http://example.org/yak"),
    "canonical": ("http://example.org/zebra", "http://example.org/zebra", "http://example.org/yak"),
    "dateTime": ("2021-04-05T06:07:08Z", "2021-04-05", "2019"),
    "date": ("2021-04-05", "2021-04", "2019"),
    "instant": ("2021-04-05T06:07:08Z", "2021-04-05", "2019"),
    "Period": ({"start": "2021-04-05", "end": "2021-04-09"}, "ge2021-04-06", "lt2020"),
    "CodeableConcept": (
        {"coding": [{"system": "http://ex.org/cs", "code": "zebra"}]},
        "http://ex.org/cs|zebra",
        "yak",
    ),
    "Coding": ({"system": "http://ex.org/cs", "code": "zebra"}, "zebra", "yak"),
    "Identifier": ({"system": "http://ex.org/id", "value": "Z-1"}, "http://ex.org/id|Z-1", "Z-2"),
    "Quantity": (
        {"value": 42, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
        "gt41",
        "lt41",
    ),
    "decimal": (42.5, "42.5", "7"),
    "integer": (42, "42", "7"),
    "unsignedInt": (42, "42", "7"),
    "positiveInt": (42, "42", "7"),
    "boolean": (True, "true", "false"),
}


def _required_value(cls, name, field, depth=0):
    kind, is_list = _element_kind(field.annotation)
    extra = field.json_schema_extra or {}
    if extra.get("enum_values"):
        value = extra["enum_values"][0]
    elif kind in SAMPLES and SAMPLES[kind][0] is not None:
        value = SAMPLES[kind][0]
    elif kind == "Reference":
        value = {"reference": f"{(extra.get('enum_reference_types') or ['Patient'])[0]}/x1"}
    elif kind and depth < 3:
        try:
            sub = get_fhir_model_class(kind)
        except (KeyError, ValueError, AttributeError):
            return None
        value = _minimal(sub, depth + 1)
        if value is None:
            return None
        if not value:  # nothing required inside, but FHIR has no empty objects (ele-1)
            value = {"extension": [{"url": "http://example.org/filler", "valueString": "x"}]}
    else:
        return None
    return [value] if is_list else value


def _minimal(cls, depth=0) -> dict | None:
    """A dict with every required element of ``cls`` filled (None if one cannot be)."""
    body = {}
    for name, field in cls.model_fields.items():
        extra = field.json_schema_extra or {}
        required = extra.get("element_required") or (field.is_required() and extra.get("element_property"))
        if not required or name == "resourceType":
            continue
        value = _required_value(cls, name, field, depth)
        if value is None:
            return None
        body[field.alias or name] = value
    return body


def _searchable_fields(resource_type: str):
    """(param, field alias, kind, is_list) for params whose expression is ``Type.field``."""
    cls = get_fhir_model_class(resource_type)
    fields = {f.alias or n: f for n, f in cls.model_fields.items()}
    for code, param in sorted(indexed_params(resource_type).items()):
        match = re.fullmatch(rf"{resource_type}\.(\w+)", param.expression)
        if not match or match.group(1) not in fields or code.startswith("_"):
            continue
        field = fields[match.group(1)]
        kind, is_list = _element_kind(field.annotation)
        enum_values = (field.json_schema_extra or {}).get("enum_values")
        if kind == "code" and enum_values:
            yield code, param, match.group(1), kind, is_list, enum_values
            continue
        simple = kind in SAMPLES and SAMPLES[kind][0] is not None and param.type != "reference"
        if simple or (kind == "Reference" and param.type == "reference"):
            yield code, param, match.group(1), kind, is_list, None


def _chosen_types(count: int = 3) -> list[str]:
    rng = random.Random(SEED)
    candidates = [t for t in resource_types() if t not in HAND_PICKED]
    rng.shuffle(candidates)
    chosen = []
    for resource_type in candidates:
        cls = get_fhir_model_class(resource_type)
        if _minimal(cls) is not None and len(list(_searchable_fields(resource_type))) >= 3:
            chosen.append(resource_type)
        if len(chosen) == count:
            break
    return chosen


@pytest.mark.parametrize("resource_type", _chosen_types())
def test_every_simple_parameter_of_a_random_type_finds_its_resource(fhir, resource_type):
    cls = get_fhir_model_class(resource_type)
    resource = {"resourceType": resource_type, **_minimal(cls)}
    checks = []
    for code, param, element, kind, is_list, enum_values in _searchable_fields(resource_type):
        if kind == "code":
            value, hit, miss = enum_values[0], enum_values[0], "no-such-code"
        elif kind == "Reference":
            target = param.targets[0] if param.targets else "Patient"
            value, hit, miss = {"reference": f"{target}/z1"}, f"{target}/z1", f"{target}/z2"
        else:
            value, hit, miss = SAMPLES[kind]
            if param.type == "token" and isinstance(value, str):
                hit, miss = value, f"{value}-not"  # a token matches the whole string
        resource[element] = [value] if is_list else value
        checks.append((code, hit, miss))
    response = fhir.post(f"/{resource_type}", resource)
    assert response.status_code == 201, (resource, response.get_json())
    created = response.get_json()["id"]
    print(f"{resource_type}: {len(checks)} parameters checked: {[c for c, _, _ in checks]}")
    for code, hit, miss in checks:
        assert fhir.ids(f"{resource_type}?{code}={quote(hit, safe='|:/')}") == [created], (
            resource_type,
            code,
            hit,
        )
        assert fhir.ids(f"{resource_type}?{code}={quote(miss, safe='|:/')}") == [], (
            resource_type,
            code,
            miss,
        )
        assert fhir.ids(f"{resource_type}?{code}:missing=false") == [created], (resource_type, code)
