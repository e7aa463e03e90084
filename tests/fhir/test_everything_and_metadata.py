"""Patient/$everything and the CapabilityStatement."""

from __future__ import annotations

from fhir.search.registry import composite_params, indexed_params


def test_everything_returns_the_patient_and_its_compartment(fhir):
    anna = fhir.create({"resourceType": "Patient", "name": [{"family": "Anna"}]})
    bob = fhir.create({"resourceType": "Patient", "name": [{"family": "Bob"}]})
    mine = [
        fhir.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": f"Patient/{anna['id']}"},
            }
        ),
        fhir.create(
            {
                "resourceType": "Condition",
                "subject": {"reference": f"Patient/{anna['id']}"},
                "code": {"text": "asthma"},
            }
        ),
    ]
    fhir.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": f"Patient/{bob['id']}"},
        }
    )
    response = fhir.get(f"/Patient/{anna['id']}/$everything")
    assert response.status_code == 200
    got = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in response.get_json()["entry"]}
    assert got == {("Patient", anna["id"])} | {(r["resourceType"], r["id"]) for r in mine}


def test_everything_pages(fhir):
    anna = fhir.create({"resourceType": "Patient", "name": [{"family": "Anna"}]})
    for _ in range(5):
        fhir.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": f"Patient/{anna['id']}"},
            }
        )
    first = fhir.get(f"/Patient/{anna['id']}/$everything?_count=4").get_json()
    assert len(first["entry"]) == 4
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = fhir.client.get(next_url.replace("http://localhost", ""), headers=fhir.headers()).get_json()
    ids = [e["resource"]["id"] for e in first["entry"] + second["entry"]]
    assert len(ids) == 6 and len(set(ids)) == 6


def test_everything_of_an_unknown_patient_is_404(fhir):
    assert fhir.get("/Patient/nobody/$everything").status_code == 404


def test_metadata_needs_no_token(client, make):
    make.hospital("general")
    response = client.get("/fhir/general/metadata")
    assert response.status_code == 200
    statement = response.get_json()
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.3.0"
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {item["url"]: item["valueUri"] for item in security["extension"][0]["extension"]}
    assert uris["token"].endswith("/oauth/token") and uris["authorize"].endswith("/oauth/authorize")


def test_capability_statement_lists_exactly_the_indexed_parameters(client, make):
    make.hospital("general")
    statement = client.get("/fhir/general/metadata").get_json()
    resources = statement["rest"][0]["resource"]
    assert len(resources) > 100
    for resource in resources:
        listed = {(p["name"], p["type"]) for p in resource["searchParam"]}
        indexed = {(code, p.type) for code, p in indexed_params(resource["type"]).items()}
        composites = {(code, "composite") for code in composite_params(resource["type"])}
        common = {("_id", "token"), ("_lastUpdated", "date")}
        # _has where some reference parameter of some type can point at this one
        has = {("_has", "special")} if resource.get("searchRevInclude") else set()
        assert listed == indexed | composites | common | has, resource["type"]


def test_every_listed_parameter_is_accepted_by_search(fhir):
    """What the statement lists, the server answers (no 400 for a listed parameter)."""
    statement = fhir.client.get("/fhir/general/metadata").get_json()
    samples = {
        "string": "x",
        "token": "x",
        "reference": "Patient/x",
        "date": "2024",
        "number": "1",
        "quantity": "1",
        "uri": "http://x",
    }
    for resource in statement["rest"][0]["resource"][:40]:
        for param in resource["searchParam"]:
            if param["type"] == "special":
                continue  # _has: tests/fhir/test_chains_and_has.py
            if param["type"] == "composite":
                second = composite_params(resource["type"])[param["name"]].components[1][0]
                sample = "x$" + samples[second]
            else:
                sample = samples[param["type"]]
            response = fhir.get(f"/{resource['type']}?{param['name']}={sample}&_count=1")
            # The audit trail needs a scope that names it; system/*.cruds does not.
            expected = 403 if resource["type"] == "AuditEvent" else 200
            assert response.status_code == expected, (resource["type"], param["name"], response.get_json())
