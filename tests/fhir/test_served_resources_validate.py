"""What the server returns validates against the fhir.resources R4B models: the
CapabilityStatement with everything it declares, and the searchset Bundles of the search paths
(system search, _has, chains, composites, compartment search)."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

LOINC = "http://loinc.org"


def test_the_capability_statement_validates(fhir):
    response = fhir.get("/metadata")
    assert response.status_code == 200
    statement = CapabilityStatement.model_validate(response.get_json())
    rest = statement.rest[0]
    assert {i.code for i in rest.interaction} >= {"search-system", "history-system", "transaction", "batch"}
    assert {p.name for p in rest.searchParam} >= {"_type", "_id", "_lastUpdated", "_tag"}


def test_searchset_bundles_of_every_search_path_validate(fhir):
    fhir.put("/Organization/o1", {"resourceType": "Organization", "id": "o1", "name": "North"})
    fhir.put(
        "/Patient/p1",
        {"resourceType": "Patient", "id": "p1", "managingOrganization": {"reference": "Organization/o1"}},
    )
    fhir.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
            "subject": {"reference": "Patient/p1"},
            "valueQuantity": {"value": 72.50, "system": "http://unitsofmeasure.org", "code": "kg"},
        }
    )
    for query in (
        "?_type=Patient,Observation,Organization",
        "Patient?_has:Observation:patient:code=29463-7&_revinclude=Observation:patient",
        "Observation?patient.organization.name=North&_include=Observation:patient",
        "Observation?code-value-quantity=29463-7$gt70",
        "Patient/p1/Observation",
    ):
        bundle = Bundle.model_validate(fhir.search(query))
        assert bundle.type == "searchset" and bundle.entry, query
