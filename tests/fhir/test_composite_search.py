"""Composite parameters (FHIR R4B search.html#composite): both parts must match one element,
so a blood pressure whose systolic is 120 and diastolic 150 is no match for systolic > 140."""

from __future__ import annotations

import pytest

from fhir.search.extract import extract

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BP, SYSTOLIC, DIASTOLIC = "85354-9", "8480-6", "8462-4"


def blood_pressure(systolic: float, diastolic: float) -> dict:
    def component(code: str, value: float) -> dict:
        return {
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        }

    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": BP}]},
        "component": [component(SYSTOLIC, systolic), component(DIASTOLIC, diastolic)],
    }


def measured(code: str, **value) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        **value,
    }


@pytest.fixture
def records(fhir):
    return {
        "high": fhir.create(blood_pressure(150, 95))["id"],
        "crossed": fhir.create(blood_pressure(120, 150))["id"],  # only the diastolic is above 140
        "weight": fhir.create(
            measured("29463-7", valueQuantity={"value": 72.5, "system": UCUM, "code": "kg"})
        )["id"],
        "smoker": fhir.create(
            measured(
                "72166-2",
                valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct", "code": "77176002"}]},
            )
        )["id"],
        "onset": fhir.create(measured("11368-8", valueDateTime="2024-03-01"))["id"],
        "note": fhir.create(measured("8251-1", valueString="Feeling dizzy today"))["id"],
    }


def test_component_code_value_quantity_pairs_code_and_value_of_one_component(fhir, records):
    query = f"Observation?component-code-value-quantity={LOINC}|{SYSTOLIC}$gt140"
    assert fhir.ids(query) == [records["high"]]
    assert fhir.ids(f"Observation?component-code-value-quantity={DIASTOLIC}$gt140") == [records["crossed"]]
    assert fhir.ids(f"Observation?component-code-value-quantity={SYSTOLIC}$120|{UCUM}|mm[Hg]") == [
        records["crossed"]
    ]
    assert fhir.ids(f"Observation?component-code-value-quantity={SYSTOLIC}$120|{UCUM}|kg") == []
    # OR of two values
    found = fhir.ids(f"Observation?component-code-value-quantity={SYSTOLIC}$gt140,{DIASTOLIC}$gt140")
    assert sorted(found) == sorted([records["high"], records["crossed"]])


def test_code_value_composites_of_the_observation_itself(fhir, records):
    assert fhir.ids(f"Observation?code-value-quantity={LOINC}|29463-7$ge72") == [records["weight"]]
    assert fhir.ids("Observation?code-value-quantity=29463-7$lt70") == []
    assert fhir.ids("Observation?code-value-concept=72166-2$http://snomed.info/sct|77176002") == [
        records["smoker"]
    ]
    assert fhir.ids("Observation?code-value-concept=72166-2$other") == []
    assert fhir.ids("Observation?code-value-date=11368-8$2024-03") == [records["onset"]]
    assert fhir.ids("Observation?code-value-date=11368-8$gt2025") == []
    assert fhir.ids("Observation?code-value-string=8251-1$feeling") == [records["note"]]
    # combo: the Observation or any of its components
    assert fhir.ids(f"Observation?combo-code-value-quantity={SYSTOLIC}$gt140") == [records["high"]]
    assert fhir.ids("Observation?combo-code-value-quantity=29463-7$72.5") == [records["weight"]]


def test_a_composite_survives_an_update_and_a_delete(fhir, records):
    fhir.put(f"/Observation/{records['high']}", {**blood_pressure(130, 80), "id": records["high"]})
    assert fhir.ids(f"Observation?component-code-value-quantity={SYSTOLIC}$gt140") == []
    assert fhir.ids(f"Observation?component-code-value-quantity={SYSTOLIC}$130") == [records["high"]]
    fhir.delete(f"/Observation/{records['high']}")
    assert fhir.ids(f"Observation?component-code-value-quantity={SYSTOLIC}$130") == []


@pytest.mark.parametrize(
    "query",
    [
        "Observation?code-value-quantity=29463-7",  # no $value
        "Observation?code-value-quantity=29463-7$",
        "Observation?code-value-quantity=29463-7$abc",  # not a number
        "Observation?code-value-date=11368-8$yesterday",
        "Observation?code-value-quantity=a$1$2",
        "Observation?code-value-concept=a\\$b",  # an escaped $ is no separator
        "Observation?code-value-quantity:missing=true",  # no modifier on composites
        "MolecularSequence?chromosome-variant-coordinate=1$gt1$lt2",  # three parts: not offered
    ],
)
def test_a_composite_the_server_cannot_apply_is_refused(fhir, query):
    response = fhir.get(f"/{query}")
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_the_capability_statement_lists_the_composites_it_searches(fhir):
    statement = fhir.get("/metadata").get_json()
    observation = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Observation")
    listed = {p["name"]: p["type"] for p in observation["searchParam"]}
    assert listed["component-code-value-quantity"] == "composite"
    assert listed["code-value-concept"] == "composite"
    sequence = next(r for r in statement["rest"][0]["resource"] if r["type"] == "MolecularSequence")
    assert "chromosome-variant-coordinate" not in {p["name"] for p in sequence["searchParam"]}


def test_only_component_composites_have_rows_of_their_own():
    """An Observation holds one code and one value: code-value-quantity is code AND
    value-quantity through their own rows; combo-* reads those and the component ones."""
    rows = extract(blood_pressure(150, 95)).composites
    assert sorted((row[0], row[2]) for row in rows) == [
        ("component-code-value-quantity", DIASTOLIC),
        ("component-code-value-quantity", SYSTOLIC),
    ]
    weight = measured("29463-7", valueQuantity={"value": 72.5, "system": UCUM, "code": "kg"})
    assert extract(weight).composites == []


def test_code_value_string_reads_value_string_only_not_a_concepts_text(fhir):
    # value-string also reads valueCodeableConcept.text; the composite's component does not
    concept = measured("8251-1", valueCodeableConcept={"text": "Feeling dizzy"})
    fhir.create(concept)
    written = fhir.create(measured("8251-1", valueString="Feeling dizzy"))["id"]
    assert fhir.ids("Observation?code-value-string=8251-1$feeling") == [written]
    assert len(fhir.ids("Observation?code=8251-1&value-string=feeling")) == 2


def test_an_escaped_dollar_belongs_to_the_value(fhir):
    written = fhir.create(measured("8251-1", valueString="a$b"))["id"]
    assert fhir.ids("Observation?code-value-string=8251-1$a\\$b") == [written]
    assert fhir.ids("Observation?value-string=a\\$b") == [written]  # unescaped for the others


def test_composites_of_other_types(fhir):
    characteristic = {"code": {"coding": [{"system": "http://s", "code": "smoker"}]}, "valueBoolean": True}
    group = fhir.create(
        {
            "resourceType": "Group",
            "type": "person",
            "actual": True,
            "characteristic": [{**characteristic, "exclude": False}],
        }
    )["id"]
    assert fhir.ids("Group?characteristic-value=http://s|smoker$true") == [group]
    assert fhir.ids("Group?characteristic-value=http://s|smoker$false") == []
    context = {
        "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
        "valueQuantity": {"value": 30, "system": UCUM, "code": "a"},
    }
    definition = fhir.create(
        {"resourceType": "ActivityDefinition", "status": "active", "useContext": [context]}
    )["id"]
    assert fhir.ids("ActivityDefinition?context-type-quantity=age$30") == [definition]
    assert fhir.ids("ActivityDefinition?context-type-quantity=age$gt40") == []
