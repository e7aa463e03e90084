"""The data set at scale (the sandbox generator) and realistic search parameters drawn from it."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import orjson

from fhir.sandbox import generate, transaction_bundles


@dataclass
class Pools:
    """What the searches draw their parameters from: only values the data really holds."""

    patients: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    # (patient id, "system|code", yyyy-mm-dd) of every Observation with an effective date
    observations: list[tuple[str, str, str]] = field(default_factory=list)
    with_encounters: list[str] = field(default_factory=list)
    with_conditions: list[str] = field(default_factory=list)
    # codes of quantity-valued Observations some value of which is above 100
    codes_above_100: list[str] = field(default_factory=list)
    practitioner_names: list[str] = field(default_factory=list)
    condition_codes: list[str] = field(default_factory=list)
    types: Counter = field(default_factory=Counter)


@dataclass
class Dataset:
    bundles: list[tuple[int, bytes]]  # (resources in it, the serialized transaction Bundle)
    pools: Pools

    @property
    def resources(self) -> int:
        return sum(n for n, _ in self.bundles)


def _patient_of(resource: dict) -> str | None:
    reference = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return reference.removeprefix("Patient/") if reference.startswith("Patient/") else None


def _token(concept: dict) -> str | None:
    codings = concept.get("coding") or []
    if not codings or not codings[0].get("code"):
        return None
    return f"{codings[0].get('system', '')}|{codings[0]['code']}"


def _tap(resources: Iterator[dict], pools: Pools) -> Iterator[dict]:
    encounters, conditions, above_100, condition_codes = set(), set(), set(), set()
    for resource in resources:
        kind = resource["resourceType"]
        pools.types[kind] += 1
        if kind == "Patient":
            pools.patients.append(resource["id"])
            for name in resource.get("name") or []:
                if name.get("family"):
                    pools.names.append(name["family"])
        elif kind == "Observation":
            patient, code = _patient_of(resource), _token(resource.get("code") or {})
            when = resource.get("effectiveDateTime") or (resource.get("effectivePeriod") or {}).get("start")
            if patient and code and when:
                pools.observations.append((patient, code, when[:10]))
            quantity = resource.get("valueQuantity") or {}
            if code and isinstance(quantity.get("value"), int | float) and quantity["value"] > 100:
                above_100.add(code)
        elif kind == "Encounter" and (patient := _patient_of(resource)):
            encounters.add(patient)
        elif kind == "Condition" and (patient := _patient_of(resource)):
            conditions.add(patient)
            if code := _token(resource.get("code") or {}):
                condition_codes.add(code)
        elif kind == "Practitioner":
            pools.practitioner_names += [n["family"] for n in resource.get("name") or [] if n.get("family")]
        yield resource
    pools.with_encounters = sorted(encounters)
    pools.with_conditions = sorted(conditions)
    pools.codes_above_100 = sorted(above_100)
    pools.condition_codes = sorted(condition_codes)


def build(patients: int, seed: int, per_bundle: int) -> Dataset:
    """Generate the population and serialize its transaction Bundles up front (not timed)."""
    pools = Pools()
    bundles = [
        (len(bundle["entry"]), orjson.dumps(bundle))
        for bundle in transaction_bundles(_tap(generate(patients, seed=seed), pools), per_bundle=per_bundle)
    ]
    return Dataset(bundles, pools)


# -- the requests measured ---------------------------------------------------------------------
PathMaker = Callable[[random.Random], str]


@dataclass(frozen=True)
class Scenario:
    label: str
    make_path: PathMaker
    target_p95_ms: float | None = None


def _query(resource_type: str, params: list[tuple[str, str]]) -> str:
    return f"{resource_type}?{urlencode(params)}"


def scenarios(pools: Pools) -> list[Scenario]:
    def read(rng):
        return f"Patient/{rng.choice(pools.patients)}"

    def observation_patient_code_date(rng):
        patient, code, day = rng.choice(pools.observations)
        return _query("Observation", [("patient", patient), ("code", code), ("date", f"ge{day}")])

    def patient_name(rng):
        return _query("Patient", [("name", rng.choice(pools.names))])

    def observation_sorted(rng):
        return _query(
            "Observation",
            [("subject", f"Patient/{rng.choice(pools.patients)}"), ("_sort", "-date"), ("_count", "20")],
        )

    def condition_patient(rng):
        return _query("Condition", [("patient", rng.choice(pools.with_conditions))])

    def encounter_revinclude(rng):
        return _query(
            "Encounter",
            [
                ("patient", rng.choice(pools.with_encounters)),
                ("_revinclude", "Observation:encounter"),
                ("_count", "5"),
            ],
        )

    def observation_value(rng):
        code = rng.choice(pools.codes_above_100)
        return _query("Observation", [("code", code), ("value-quantity", "gt100")])

    def patient_revinclude(rng):
        patient = rng.choice(pools.patients)
        return _query(
            "Patient",
            [("_id", patient), ("_revinclude", "Condition:patient"), ("_revinclude", "Encounter:patient")],
        )

    def two_level_chain(rng):
        # a code's observations of the patients of one general practitioner
        _, code, _ = rng.choice(pools.observations)
        chain = "subject:Patient.general-practitioner:Practitioner.family"
        return _query(
            "Observation", [(chain, rng.choice(pools.practitioner_names)), ("code", code), ("_count", "20")]
        )

    def reverse_chain(rng):
        return _query(
            "Patient", [("_has:Condition:patient:code", rng.choice(pools.condition_codes)), ("_count", "20")]
        )

    found = [
        Scenario("GET Patient/{id}", read, 10.0),
        Scenario("Observation?patient=X&code=Y&date=geZ", observation_patient_code_date, 25.0),
        Scenario("Patient?name=N", patient_name),
        Scenario("Observation?subject=Patient/X&_sort=-date&_count=20", observation_sorted),
        Scenario("Condition?patient=X", condition_patient),
        Scenario("Encounter?patient=X&_revinclude=Observation:encounter&_count=5", encounter_revinclude),
        Scenario("Observation?code=Y&value-quantity=gt100", observation_value),
        Scenario("Patient?_id=X&_revinclude=Condition,Encounter", patient_revinclude),
        Scenario("Observation?subject:Patient.general-practitioner.family=F&code=Y", two_level_chain),
        Scenario("Patient?_has:Condition:patient:code=Y", reverse_chain),
    ]
    # A tiny population may lack some kinds of data; skip what cannot be drawn.
    empty = {
        "Condition?patient=X": not pools.with_conditions,
        "Encounter?patient=X&_revinclude=Observation:encounter&_count=5": not pools.with_encounters,
        "Observation?code=Y&value-quantity=gt100": not pools.codes_above_100,
        "Observation?patient=X&code=Y&date=geZ": not pools.observations,
        "Patient?name=N": not pools.names,
        "Observation?subject:Patient.general-practitioner.family=F&code=Y": not (
            pools.observations and pools.practitioner_names
        ),
        "Patient?_has:Condition:patient:code=Y": not pools.condition_codes,
    }
    return [s for s in found if not empty.get(s.label)]


def typical_searches(pools: Pools, fhir_path: str, seed: int, count: int = 1000) -> dict[str, list[str]]:
    """The two searches measured beside the read (``benchmarks.ceiling``): a patient's
    Observations (the first page of 20) and a patient's Observations of one code since a date."""
    rng = random.Random(f"{seed}/typical")  # noqa: S311
    patients = [rng.choice(pools.patients) for _ in range(count)]
    drawn = [rng.choice(pools.observations) for _ in range(count)]
    return {
        "Observation?subject=Patient/X": [f"{fhir_path}/Observation?subject=Patient/{p}" for p in patients],
        "Observation?patient=X&code=Y&date=geZ": [
            f"{fhir_path}/Observation?" + urlencode({"patient": p, "code": code, "date": f"ge{day}"})
            for p, code, day in drawn
        ],
    }
