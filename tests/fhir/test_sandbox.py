"""The sandbox generator: valid R4B, deterministic, referentially whole, varied, and fast."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest

from fhir.resources.R4B import get_fhir_model_class
from fhir.sandbox import generate, transaction_bundles

PATIENTS = 20
SHARED_TYPES = ("Organization", "Practitioner")
PATIENT_TYPES = (
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
)
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
DATE_TIME_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_CODES = {"8867-4", "85354-9", "29463-7", "8302-2", "8310-5", "9279-1", "59408-5", "39156-5"}
LAB_CODES = {"2339-0", "4548-4", "2160-0", "718-7", "2093-3"}


@pytest.fixture(scope="module")
def resources() -> list[dict]:
    return list(generate(PATIENTS))


@pytest.fixture(scope="module")
def population() -> list[dict]:
    """A larger population for properties that need variety rather than every detail checked."""
    return list(generate(300, seed=11))


def split(resources: list[dict]) -> tuple[list[dict], list[list[dict]]]:
    """The shared set, and each patient's resources (a Patient and everything after it)."""
    shared = []
    patients: list[list[dict]] = []
    for resource in resources:
        if resource["resourceType"] == "Patient":
            patients.append([])
        (patients[-1] if patients else shared).append(resource)
    return shared, patients


def references(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        for value in node.values():
            found.extend(references(value))
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in references(item)]
    return []


def code_of(resource: dict) -> str:
    return resource["code"]["coding"][0]["code"]


def observations(resources: list[dict], category: str) -> list[dict]:
    return [
        r
        for r in resources
        if r["resourceType"] == "Observation" and r["category"][0]["coding"][0]["code"] == category
    ]


def test_every_resource_validates_as_r4b(resources):
    failures = []
    started = time.perf_counter()
    for resource in resources:
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except Exception as error:  # report every failure, not only the first
            failures.append(f"{resource['resourceType']}/{resource['id']}: {error}")
    rate = len(resources) / (time.perf_counter() - started)
    print(f"\nvalidated {len(resources)} resources with fhir.resources.R4B at {rate:,.0f}/s")
    assert not failures, "\n".join(failures[:5])


def test_same_arguments_give_byte_identical_output(resources):
    again = list(generate(PATIENTS))
    assert json.dumps(again, ensure_ascii=False) == json.dumps(resources, ensure_ascii=False)


def test_a_range_of_patients_equals_the_same_slice_of_a_larger_run():
    shared, patients = split(list(generate(10)))
    part = list(generate(5, start_index=3))
    assert part == shared + [r for patient in patients[3:8] for r in patient]


def test_different_seeds_give_different_people_and_disjoint_ids(resources):
    other = list(generate(PATIENTS, seed=1))
    assert not {r["id"] for r in other} & {r["id"] for r in resources}
    names = [r["name"] for r in resources if r["resourceType"] == "Patient"]
    assert names != [r["name"] for r in other if r["resourceType"] == "Patient"]


def test_ids_are_valid_fhir_ids_and_unique(resources):
    ids = [r["id"] for r in resources]
    assert all(FHIR_ID.fullmatch(id_) for id_ in ids)
    assert len(ids) == len(set(ids))


def test_every_reference_points_to_a_resource_generated_before_it(resources):
    seen = set()
    dangling = []
    for resource in resources:
        key = f"{resource['resourceType']}/{resource['id']}"
        dangling.extend(f"{key} -> {ref}" for ref in references(resource) if ref not in seen)
        seen.add(key)
    assert not dangling, dangling[:5]


def test_no_two_places_share_a_nested_object(resources):
    """Consumers may rewrite references in place (transaction processing does); that must stay local."""
    seen: set[int] = set()
    stack: list = list(resources)
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            assert id(node) not in seen
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)


def test_shared_set_comes_first_then_each_patient_in_dependency_order(resources):
    shared, patients = split(resources)
    assert [r["resourceType"] for r in shared] == sorted(
        (r["resourceType"] for r in shared), key=SHARED_TYPES.index
    )
    assert shared[0]["resourceType"] == "Organization"
    assert sum(r["resourceType"] == "Practitioner" for r in shared) == 10
    assert len(patients) == PATIENTS
    for patient in patients:
        types = [r["resourceType"] for r in patient]
        assert types == sorted(types, key=PATIENT_TYPES.index)
        owner = f"Patient/{patient[0]['id']}"
        for resource in patient[1:]:
            subject = resource.get("subject") or resource.get("patient")
            assert subject["reference"] == owner


def test_every_resource_type_appears(resources):
    assert set(SHARED_TYPES + PATIENT_TYPES) <= {r["resourceType"] for r in resources}


def test_about_a_hundred_resources_per_patient(population):
    shared, patients = split(population)
    average = (len(population) - len(shared)) / len(patients)
    print(f"\n{average:.1f} resources per patient on average over {len(patients)} patients")
    assert 80 <= average <= 130


def test_generation_is_much_faster_than_ingestion():
    """Stream, as a loader does: holding 100k dicts would time the garbage collector instead."""
    started = time.perf_counter()
    count = sum(1 for _ in generate(500, seed=3))
    rate = count / (time.perf_counter() - started)
    print(f"\ngenerated {count} resources at {rate:,.0f} resources/s")
    # The target is 20,000/s; the floor leaves room for a loaded CI machine.
    assert rate >= 10_000


def test_vital_signs_use_loinc_and_ucum(resources):
    vitals = observations(resources, "vital-signs")
    assert {code_of(o) for o in vitals} >= VITAL_CODES
    for obs in vitals:
        assert obs["code"]["coding"][0]["system"] == LOINC
        parts = obs.get("component", [obs])
        quantities = [part["valueQuantity"] for part in parts]
        assert all(q["system"] == UCUM and q["code"] for q in quantities)
    pressure = next(o for o in vitals if code_of(o) == "85354-9")
    assert [code_of(c) for c in pressure["component"]] == ["8480-6", "8462-4"]
    assert all(c["valueQuantity"]["code"] == "mm[Hg]" for c in pressure["component"])
    oximetry = next(o for o in vitals if code_of(o) == "59408-5")
    assert [c["code"] for c in oximetry["code"]["coding"]] == ["59408-5", "2708-6"]


def test_labs_use_loinc_and_ucum_and_belong_to_one_report_of_their_encounter(resources):
    labs = {o["id"]: o for o in observations(resources, "laboratory")}
    assert {code_of(o) for o in labs.values()} >= LAB_CODES
    assert all(o["valueQuantity"]["system"] == UCUM for o in labs.values())
    reported = Counter()
    for report in (r for r in resources if r["resourceType"] == "DiagnosticReport"):
        assert report["code"]["coding"][0]["system"] == LOINC
        for ref in report["result"]:
            obs = labs[ref["reference"].removeprefix("Observation/")]
            assert obs["encounter"] == report["encounter"]
            assert obs["effectiveDateTime"] == report["effectiveDateTime"]
            reported[obs["id"]] += 1
    assert set(reported) == set(labs)
    assert set(reported.values()) == {1}


def test_conditions_are_snomed_and_some_have_resolved(population):
    conditions = [r for r in population if r["resourceType"] == "Condition"]
    assert all(c["code"]["coding"][0]["system"] == SNOMED for c in conditions)
    assert len({code_of(c) for c in conditions}) >= 10
    assert {"44054006", "38341003", "195967001", "55822004"} <= {code_of(c) for c in conditions}
    resolved = [c for c in conditions if "abatementDateTime" in c]
    assert resolved
    assert all(c["clinicalStatus"]["coding"][0]["code"] == "resolved" for c in resolved)


def test_medications_immunizations_and_allergies_use_their_code_systems(resources):
    by_type = Counter()
    for resource in resources:
        kind = resource["resourceType"]
        if kind == "MedicationRequest":
            coding = resource["medicationCodeableConcept"]["coding"][0]
            assert coding["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
            assert resource["dosageInstruction"]
            assert resource["requester"]["reference"].startswith("Practitioner/")
        elif kind == "Immunization":
            assert resource["vaccineCode"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/cvx"
        elif kind == "AllergyIntolerance":
            assert code_of(resource) and resource["reaction"][0]["manifestation"]
        by_type[kind] += 1
    assert by_type["MedicationRequest"] and by_type["Immunization"] and by_type["AllergyIntolerance"]


def test_people_have_unicode_names_mrns_and_npis(population):
    patients = [r for r in population if r["resourceType"] == "Patient"]
    names = [" ".join([*p["name"][0]["given"], p["name"][0]["family"]]) for p in patients]
    assert any(not name.isascii() for name in names)
    assert len(set(names)) > 0.9 * len(names)
    assert all(p["identifier"][0]["type"]["coding"][0]["code"] == "MR" for p in patients)
    assert len({p["identifier"][0]["value"] for p in patients}) == len(patients)
    npis = [r["identifier"][0]["value"] for r in population if r["resourceType"] == "Practitioner"]
    assert all(re.fullmatch(r"\d{10}", npi) and luhn_valid("80840" + npi) for npi in npis)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def test_times_carry_utc_offsets_and_span_several_years(population):
    stamps = [o["effectiveDateTime"] for o in population if o["resourceType"] == "Observation"]
    assert all(DATE_TIME_WITH_OFFSET.fullmatch(stamp) for stamp in stamps)
    assert len({stamp[:4] for stamp in stamps}) >= 4
    assert len({stamp[-6:] for stamp in stamps}) >= 4  # several zones, with and without daylight saving


def test_transaction_bundles_put_every_resource_once_in_order(resources):
    bundles = list(transaction_bundles(resources, per_bundle=300))
    assert all(b["resourceType"] == "Bundle" and b["type"] == "transaction" for b in bundles)
    assert [len(b["entry"]) for b in bundles[:-1]] == [300] * (len(bundles) - 1)
    entries = [e for b in bundles for e in b["entry"]]
    assert [e["resource"] for e in entries] == resources
    for entry in entries:
        resource = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        assert "fullUrl" not in entry
    get_fhir_model_class("Bundle").model_validate(bundles[0])


def test_transaction_bundles_with_a_base_give_absolute_full_urls(resources):
    bundle = next(transaction_bundles(resources[:3], base="https://fhir.example.org/fhir/sandbox/"))
    first = resources[0]
    assert bundle["entry"][0]["fullUrl"] == (
        f"https://fhir.example.org/fhir/sandbox/{first['resourceType']}/{first['id']}"
    )


@pytest.mark.parametrize(("args", "kwargs"), [((-1,), {}), ((1,), {"start_index": -1})])
def test_generate_rejects_negative_counts(args, kwargs):
    with pytest.raises(ValueError):
        next(generate(*args, **kwargs))


def test_transaction_bundles_reject_an_empty_bundle_size():
    with pytest.raises(ValueError):
        next(transaction_bundles([], per_bundle=0))
