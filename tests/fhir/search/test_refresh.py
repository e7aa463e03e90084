"""refresh.py keeps only what the registry needs from HL7's definitions."""

from __future__ import annotations

import json

from fhir.definitions.refresh import write

ALL_TYPES = ["Patient", "Observation", "MedicinalProduct"]


def parameter(id_: str, base: list[str], **extra) -> dict:
    return {
        "resourceType": "SearchParameter",
        "id": id_,
        "url": f"http://hl7.org/fhir/SearchParameter/{id_}",
        "name": id_,
        "description": "a long description",
        "xpath": "f:Patient/f:name",
        "xpathUsage": "normal",
        "extension": [{"url": "http://x", "valueCode": "trial-use"}],
        "code": id_.split("-", 1)[1],
        "base": base,
        "type": "token",
        "expression": " | ".join(f"{b}.x" for b in base),
        **extra,
    }


def test_refresh_slims_the_definitions(tmp_path):
    bundle = {
        "entry": [
            {"resource": parameter("Patient-x", ["Patient", "MedicinalProduct"], comparator=["eq"])},
            {"resource": parameter("MedicinalProduct-y", ["MedicinalProduct"])},
            {"resource": parameter("Observation-focus", ["Observation"], target=ALL_TYPES, type="reference")},
            {"resource": parameter("Observation-z", ["Observation"], url="http://example.org/z")},
        ]
    }
    compartment = {
        "resource": [
            {"code": "Observation", "param": ["subject", "performer"]},
            {"code": "Patient", "param": ["link"]},
            {"code": "MedicinalProduct", "param": ["x"]},
            {"code": "Practitioner"},
        ],
        "text": {"div": "<div/>"},
    }
    files = {
        f"SearchParameter-{entry['resource']['id']}.json": entry["resource"] for entry in bundle["entry"]
    }
    files["SearchParameter-example.json"] = {
        **parameter("Resource-example", ["Resource"]),
        "experimental": True,
    }
    files["CompartmentDefinition-patient.json"] = compartment
    assert write(files, tmp_path) == (3, 4)
    data = json.loads((tmp_path / "search-parameters.json").read_text())
    assert data["anyTarget"] == ["Observation", "Patient"]
    by_id = {p["id"]: p for p in data["parameter"]}
    assert by_id["Patient-x"] == {
        "id": "Patient-x", "code": "x", "base": ["Patient"], "type": "token",
        "expression": "Patient.x | MedicinalProduct.x", "comparator": ["eq"],
    }  # fmt: skip
    assert by_id["Observation-focus"]["target"] == ["Resource"]
    assert by_id["Observation-z"]["url"] == "http://example.org/z"
    assert json.loads((tmp_path / "compartment-patient.json").read_text()) == {
        "Observation": ["subject", "performer"],
        "Patient": ["link"],
    }
