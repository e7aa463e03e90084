"""The search parameter registry, built from the specification's own definitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir.resources.R4B import get_fhir_model_class
from fhir.search.registry import (
    CANONICAL_BASE,
    expression_for,
    indexed_params,
    patient_compartment_params,
    resource_types,
    search_params,
    split_union,
)

DEFINITIONS = Path(__file__).resolve().parents[3] / "fhir" / "definitions"
SPEC = json.loads((DEFINITIONS / "search-parameters.json").read_text("utf-8"))
R4_ONLY = ("MedicinalProduct", "SubstanceSpecification", "EffectEvidenceSynthesis", "RiskEvidenceSynthesis")


def test_every_type_with_spec_parameters_is_present():
    bases = {b for p in SPEC["parameter"] for b in p["base"]} - {"Resource", "DomainResource"}
    listed = set(json.loads((DEFINITIONS / "resource-types.json").read_text("utf-8")))
    assert set(resource_types()) == bases | listed
    assert bases < listed  # Binary, Parameters and a few more have the common parameters only
    assert len(resource_types()) == 141
    for name in resource_types():
        get_fhir_model_class(name)  # each is an R4B type
        assert search_params(name), name


def test_r4_only_types_are_left_out():
    for name in R4_ONLY:
        assert name not in resource_types()
        assert search_params(name) == {}


def test_observation_has_the_clinical_parameters():
    params = search_params("Observation")
    for code in (
        "code",
        "subject",
        "patient",
        "date",
        "value-quantity",
        "category",
        "status",
        "encounter",
        "performer",
        "component-code",
        "combo-code",
        "value-concept",
        "identifier",
        "based-on",
    ):
        assert code in params, code
    assert params["subject"].type == "reference"
    assert params["date"].type == "date"
    assert params["value-quantity"].type == "quantity"
    assert params["code-value-quantity"].type == "composite"


def test_common_parameters_apply_to_every_type():
    for name in ("Observation", "Patient", "Bundle", "Binary"):
        params = search_params(name)
        for code in ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"):
            assert params[code].resource_type == name
    assert "_text" in search_params("Patient")
    assert "_text" in search_params("Bundle")  # R4B defines Resource-text as well as DomainResource-text


def test_common_expressions_are_rooted_at_the_type():
    assert search_params("Observation")["_tag"].expression == "Observation.meta.tag"
    assert search_params("Patient")["_profile"].expression == "Patient.meta.profile"


def test_r4b_types_without_spec_parameters_still_have_the_common_ones():
    params = search_params("Citation")  # new in R4B
    assert {"_id", "_lastUpdated", "_tag"} <= set(params)
    assert search_params("NoSuchType") == {}
    assert search_params("HumanName") == {}  # a datatype, not a resource


def test_indexed_params_leave_out_storage_columns_composites_and_specials():
    indexed = indexed_params("Observation")
    assert "_id" not in indexed and "_lastUpdated" not in indexed
    assert "code-value-quantity" not in indexed
    assert "_text" not in indexed_params("Patient")  # no expression
    assert "near" not in indexed_params("Location")  # special
    assert {"_tag", "_profile", "_security", "_source", "code", "patient"} <= set(indexed)
    assert all(
        p.type in {"string", "token", "reference", "date", "number", "quantity", "uri"}
        for name in resource_types()
        for p in indexed_params(name).values()
    )


def test_clinical_patient_keeps_only_the_observation_part():
    patient = search_params("Observation")["patient"]
    assert patient.url == "http://hl7.org/fhir/SearchParameter/clinical-patient"
    assert patient.expression == "Observation.subject.where(resolve() is Patient)"
    assert patient.targets == ("Patient",)
    assert search_params("AllergyIntolerance")["patient"].expression == "AllergyIntolerance.patient"


def test_parenthesized_parts_are_kept():
    assert search_params("Observation")["value-quantity"].expression == (
        "(Observation.value as Quantity) | (Observation.value as SampledData)"
    )
    assert search_params("RiskAssessment")["date"].expression == "(RiskAssessment.occurrence as dateTime)"


def test_unrooted_parts_are_rooted_at_the_base():
    assert search_params("InsurancePlan")["name"].expression == "InsurancePlan.name | InsurancePlan.alias"


def test_split_union_ignores_bars_in_brackets_and_quotes():
    expression = "A.where(x = 'a | b') | (B.c as D) | C.d.where(e in (f | g)) | E.f.where(g='it\\'s | h')"
    assert split_union(expression) == [
        "A.where(x = 'a | b')",
        "(B.c as D)",
        "C.d.where(e in (f | g))",
        "E.f.where(g='it\\'s | h')",
    ]


def test_expression_for_drops_other_types():
    assert expression_for("Patient.name | Practitioner.name | Resource.id", "Practitioner") == (
        "Practitioner.name | Practitioner.id"
    )
    assert expression_for("Patient.name", "Practitioner") == ""


def test_targets_and_urls():
    subject = search_params("Observation")["subject"]
    assert {"Patient", "Group", "Device", "Location"} <= set(subject.targets)
    focus = search_params("Observation")["focus"]  # Reference(Any)
    assert len(focus.targets) == len(SPEC["anyTarget"]) and "Observation" in focus.targets
    assert "MedicinalProduct" not in focus.targets
    for name in ("Patient", "Observation", "ValueSet"):
        for param in search_params(name).values():
            assert param.url.startswith(CANONICAL_BASE)


def test_no_type_has_two_definitions_for_one_code():
    seen: dict[tuple[str, str], str] = {}
    for definition in SPEC["parameter"]:
        for base in definition["base"]:
            key = (base, definition["code"])
            assert key not in seen, (key, seen.get(key), definition["id"])
            seen[key] = definition["id"]


def test_compartment_params():
    assert patient_compartment_params("Observation") == ("subject", "performer")
    assert patient_compartment_params("Patient") == ("link",)
    assert patient_compartment_params("Practitioner") == ()
    assert patient_compartment_params("NoSuchType") == ()


@pytest.mark.parametrize("name", [n for n in resource_types() if patient_compartment_params(n)])
def test_compartment_params_are_indexed_references(name):
    for code in patient_compartment_params(name):
        assert indexed_params(name)[code].type == "reference", code


def test_repeating_parameters_are_stored_under_the_ones_they_repeat():
    from fhir.search.registry import Storage, storage, stored_under

    assert stored_under("Observation", "patient") == Storage(("subject",), "Patient")
    assert stored_under("Encounter", "practitioner") == Storage(("participant",), "Practitioner")
    assert stored_under("Observation", "combo-code") == Storage(("code", "component-code"))
    assert stored_under("Observation", "subject") == Storage(("subject",))
    assert stored_under("AllergyIntolerance", "patient") == Storage(("patient",))  # its own element
    for resource_type in resource_types():
        stores = storage(resource_type)
        for code, stored in stores.items():
            for base in stored.codes:  # a parameter's rows are always somebody's own
                assert stores[base].codes == (base,), (resource_type, code, base)
