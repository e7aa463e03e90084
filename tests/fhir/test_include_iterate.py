"""``_include:iterate``, ``_revinclude:iterate`` and ``_include=*`` (FHIR R4B
search.html#revinclude): applied, never refused with a misleading message, and bound by the
patient compartment like every include."""

from __future__ import annotations

import pytest

from tests.fhir.conftest import patient_fhir_client


@pytest.fixture
def clinic(fhir):
    fhir.put("/Organization/clinic", {"resourceType": "Organization", "id": "clinic", "name": "Clinic"})
    fhir.put("/Practitioner/dr", {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Who"}]})
    for pid in ("anna", "bob"):
        fhir.put(f"/Patient/{pid}", {"resourceType": "Patient", "id": pid})
        fhir.put(
            f"/Encounter/{pid}-visit",
            {
                "resourceType": "Encounter",
                "id": f"{pid}-visit",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": f"Patient/{pid}"},
                "serviceProvider": {"reference": "Organization/clinic"},
            },
        )
        fhir.put(
            f"/Observation/{pid}-obs",
            {
                "resourceType": "Observation",
                "id": f"{pid}-obs",
                "status": "final",
                "code": {"text": "pulse"},
                "subject": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": f"Encounter/{pid}-visit"},
                "performer": [{"reference": "Practitioner/dr"}],
            },
        )


def kinds(bundle: dict) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {"match": set(), "include": set()}
    for entry in bundle.get("entry", []):
        out[entry["search"]["mode"]].add((entry["resource"]["resourceType"], entry["resource"]["id"]))
    return out


def test_include_iterate_follows_what_was_included(fhir, clinic):
    bundle = fhir.search(
        "Observation?_id=anna-obs&_include=Observation:encounter&_include:iterate=Encounter:service-provider"
    )
    assert kinds(bundle)["include"] == {("Encounter", "anna-visit"), ("Organization", "clinic")}


def test_without_iterate_the_second_include_is_refused_as_what_it_is(fhir, clinic):
    response = fhir.get("/Observation?_include=Encounter:service-provider")
    assert response.status_code == 400
    assert "Unknown search parameter" not in response.get_json()["issue"][0]["diagnostics"]


def test_revinclude_iterate_follows_back_from_what_was_included(fhir, clinic):
    bundle = fhir.search(
        "Patient?_id=anna&_revinclude=Encounter:subject&_revinclude:iterate=Observation:encounter"
    )
    assert kinds(bundle)["include"] == {("Encounter", "anna-visit"), ("Observation", "anna-obs")}


def test_include_star_brings_every_reference(fhir, clinic):
    bundle = fhir.search("Observation?_id=anna-obs&_include=*")
    assert kinds(bundle)["include"] == {
        ("Patient", "anna"),
        ("Encounter", "anna-visit"),
        ("Practitioner", "dr"),
    }
    typed = fhir.search("Observation?_id=anna-obs&_include=Observation:*:Practitioner")
    assert kinds(typed)["include"] == {("Practitioner", "dr")}


def test_the_old_recurse_name_works_and_other_modifiers_are_refused(fhir, clinic):
    bundle = fhir.search(
        "Observation?_id=anna-obs&_include=Observation:encounter&_include:recurse=Encounter:subject"
    )
    assert ("Patient", "anna") in kinds(bundle)["include"]
    assert fhir.get("/Observation?_include:sideways=Observation:subject").status_code == 400


def test_a_patient_token_iterates_within_its_own_compartment(fhir, make, client, clinic):
    anna = patient_fhir_client(make, client, fhir.hospital, "anna")
    query = (
        "Observation?_include=Observation:performer&_include=*"
        "&_revinclude:iterate=Observation:performer&_revinclude:iterate=Encounter:service-provider"
    )
    response = anna.get(f"/{query}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "bob" not in text  # Bob's observation performed by the same doctor, his encounter at the clinic
    assert ("Observation", "anna-obs") in kinds(response.get_json())["match"]


def test_every_include_the_capability_statement_lists_is_accepted(fhir, clinic):
    statement = fhir.client.get(f"{fhir.base}/metadata").get_json()
    observation = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Observation")
    assert {"*", "Observation:*", "Observation:encounter"} <= set(observation["searchInclude"])
    for value in observation["searchInclude"]:
        for key in ("_include", "_include:iterate"):
            response = fhir.get(f"/Observation?_id=anna-obs&{key}={value}")
            assert response.status_code == 200, (key, value, response.get_json())
