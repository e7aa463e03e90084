"""The audit writer's direct index of an AuditEvent is what the generic extraction finds."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from fhir.audit import INTERACTIONS, MAX_ENTITIES, RequestFacts, audit_event
from fhir.audit_index import audit_index
from fhir.search.extract import IndexValues, extract

ADDRESSES = [None, "", "127.0.0.1", "2001:db8::1", "  ", "x" * 300, "Ünïcode  Host"]
CLIENTS = [(None, None), ("hk_abc", "hospital_key"), ("  ", "patient_credential"), ("Ça va", "app")]
PATIENTS = [None, "p1", "other-patient"]
RESOURCES = [(None, None), ("Patient", "p1"), ("Observation", "o-1"), ("Patient", "p2")]


def _returned(rng: random.Random) -> list[str]:
    """The resources a Bundle response carried, as its builders note them (repeats included)."""
    refs = []
    for n in range(rng.choice([0, 1, 3, MAX_ENTITIES + 5])):
        kind = rng.choice(["Patient", "Observation", "Encounter"])
        refs.append(f"{kind}/{kind[0].lower()}{n % 7}")
    return refs


def _facts(rng: random.Random) -> list[RequestFacts]:
    facts = []
    interactions = [*INTERACTIONS.values(), "unknown"]
    shapes = itertools.product(interactions, [200, 201, 404, 500], ADDRESSES, CLIENTS, PATIENTS)
    for interaction, status, address, (client_id, kind), patient_id in shapes:
        resource_type, resource_id = rng.choice(RESOURCES)
        facts.append(
            RequestFacts(
                hospital_id=rng.choice(["general", "h-2"]),
                recorded=datetime(2026, 1, 2, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**12)),
                interaction=interaction,
                method=rng.choice(["GET", "POST", "DELETE"]),
                path=f"/fhir/general/{resource_type or ''}",
                query=rng.choice(["", "code=a&patient=p1", "_count=5"]),
                status=status,
                address=address,
                client_id=client_id,
                client_kind=kind,
                patient_id=patient_id,
                resource_type=resource_type,
                resource_id=resource_id,
                references=_returned(rng) if rng.random() < 0.4 else [],
            )
        )
        if rng.random() < 0.1:  # a summary of tallied refusals (fhir.audit_tally)
            facts[-1].count = rng.randrange(2, 10_000)
            facts[-1].period_start = facts[-1].recorded - timedelta(seconds=rng.randrange(60))
    return facts


def _stored(event: dict) -> dict:
    """The event as the repository indexes it: with its id and meta."""
    return {**event, "id": "a1", "meta": {"versionId": "1", "lastUpdated": event["recorded"]}}


def _comparable(values: IndexValues) -> dict:
    return {
        "strings": sorted(values.strings),
        "tokens": sorted(values.tokens, key=repr),
        "references": sorted(values.references, key=repr),
        "dates": sorted(values.dates),
        "numbers": values.numbers,
        "quantities": values.quantities,
        "uris": values.uris,
        "compartment_patients": values.compartment_patients,
    }


def test_every_shape_of_event_is_indexed_as_extract_indexes_it():
    cases = _facts(random.Random(7))
    assert len(cases) > 2000
    for facts in cases:
        event = audit_event(facts)
        assert _comparable(audit_index(event)) == _comparable(extract(_stored(event))), facts


def test_the_index_carries_the_searchable_facts():
    facts = RequestFacts(
        hospital_id="general",
        recorded=datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC),
        interaction="read",
        method="GET",
        path="/fhir/general/Patient/p1",
        query="",
        status=200,
        address="10.1.2.3",
        client_id="hk_key",
        client_kind="hospital_key",
        patient_id="p1",
        resource_type="Patient",
        resource_id="p1",
    )
    values = audit_index(audit_event(facts))
    tokens = {(code, value) for code, _, value, _ in values.tokens}
    assert {("action", "R"), ("altid", "hk_key"), ("outcome", "0"), ("site", "general")} <= tokens
    assert {("subtype", "read"), ("type", "rest"), ("entity-role", "1")} <= tokens
    assert ("address", "10.1.2.3", "10.1.2.3") in values.strings
    # The patient's entity is listed once, though both the URL and the token name it.
    assert values.references == [
        ("entity", "Patient", "p1", "Patient/p1"),
        ("patient", "Patient", "p1", "Patient/p1"),
    ]
    assert values.compartment_patients == {"p1"}
    assert [low.isoformat() for _, low, _ in values.dates] == ["2026-03-04T05:06:07.890000+00:00"]


@pytest.mark.parametrize("element", ["policy", "role"])
def test_an_element_the_direct_index_does_not_read_is_caught(element):
    """Guards the guard: an element audit_event might add one day changes extract's answer."""
    event = audit_event(_facts(random.Random(1))[0])
    if element == "policy":
        event["agent"][0]["policy"] = ["http://example.org/policy"]
    else:
        event["agent"][0]["role"] = [{"coding": [{"system": "s", "code": "c"}]}]
    assert _comparable(audit_index(event)) != _comparable(extract(_stored(event)))
