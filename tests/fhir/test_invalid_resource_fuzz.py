"""A corpus of over 2,000 invalid resources, each a valid sandbox resource (``fhir.sandbox``) with
one mutation that no R4B server may accept, at a seeded random place: every one gets a 4xx
OperationOutcome that itself validates as R4B, and nothing is stored."""

from __future__ import annotations

import copy
import random

import orjson

from app.extensions import db
from fhir.resource_rules import required_codes
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.sandbox import generate
from tests.conftest import count_stored

XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def _places(value, path=()):
    """Every (path, value) below the root, objects and arrays included."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "resourceType":
                yield (*path, key), item
                yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index), item
            yield from _places(item, (*path, index))


def _set(resource: dict, path: tuple, new) -> dict:
    mutated = copy.deepcopy(resource)
    target = mutated
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return mutated


def _pick(rng: random.Random, resource: dict, wanted) -> tuple | None:
    choices = [path for path, value in _places(resource) if wanted(path, value)]
    return rng.choice(choices) if choices else None


def _mutations(rng: random.Random, resource: dict):
    """(what, mutated resource) pairs, each certainly invalid."""
    strings = lambda path, value: isinstance(value, str) and path[-1] != "id"  # noqa: E731
    yield "null", _set(resource, _pick(rng, resource, lambda p, v: True), None)
    if path := _pick(rng, resource, lambda p, v: isinstance(v, list)):
        yield "empty array", _set(resource, path, [])
    if path := _pick(rng, resource, lambda p, v: isinstance(v, dict)):
        yield "empty object", _set(resource, path, {})
    if path := _pick(rng, resource, strings):
        yield "empty string", _set(resource, path, "")
        yield "object for a primitive", _set(resource, path, {"value": "x"})
        yield "array for a primitive", _set(resource, path, ["x", "y"])
    if path := _pick(rng, resource, lambda p, v: isinstance(v, dict)):
        yield "unknown element", _set(resource, (*path, f"madeUp{rng.randrange(1000)}"), "x")
    yield "unknown top-level element", {**resource, "colour": "blue"}
    yield "bad id", {**resource, "id": "not/an id!"}
    coded = [e.split(".", 1)[1] for e in required_codes() if e.startswith(f"{resource['resourceType']}.")]
    top = [name for name in coded if "." not in name and isinstance(resource.get(name), str)]
    if top:
        bogus = f"not-a-code-{rng.randrange(99)}"
        yield "code outside a required binding", {**resource, rng.choice(top): bogus}
    yield (
        "script in the narrative",
        {
            **resource,
            "text": {"status": "generated", "div": f"<div {XHTML}><script>steal()</script>x</div>"},
        },
    )
    yield (
        "event attribute in the narrative",
        {
            **resource,
            "text": {"status": "generated", "div": f'<div {XHTML}><p onclick="steal()">x</p></div>'},
        },
    )
    yield "meta as a string", {**resource, "meta": "recent"}


def corpus(seed: int = 20261206) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    generated = list(generate(6, seed=seed))  # ~640 resources of 10 types
    by_type: dict[str, list[dict]] = {}
    for resource in generated:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    # every type, up to 22 of each: ~200 resources, ~2,200 cases
    resources = [r for same in by_type.values() for r in rng.sample(same, min(len(same), 22))]
    cases = []
    for resource in resources:
        resource = {key: value for key, value in resource.items() if key not in ("id", "meta")}
        cases += list(_mutations(rng, resource))
    return cases


def test_over_2000_invalid_resources_are_each_refused_with_a_valid_outcome_and_nothing_stored(fhir, app):
    cases = corpus()
    assert len(cases) >= 2000
    with app.app_context():
        before = count_stored("fhir_resources"), count_stored("fhir_history")
    accepted, outcomes = [], 0
    for what, resource in cases:
        response = fhir.post(f"/{resource['resourceType']}", orjson.dumps(resource))
        if response.status_code != 400:  # refused as invalid, not for any other reason
            accepted.append((what, response.status_code, orjson.dumps(resource)[:300]))
            continue
        OperationOutcome.model_validate(response.get_json())
        outcomes += 1
    assert accepted == [], accepted[:5]
    assert outcomes == len(cases)
    with app.app_context():
        db.session.rollback()
        assert (count_stored("fhir_resources"), count_stored("fhir_history")) == before
