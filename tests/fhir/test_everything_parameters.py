"""``Patient/{id}/$everything`` applies ``_since``, ``_type``, ``start``, ``end`` and ``_count``,
and brings the resources the record points to outside the compartment (FHIR R4B
patient-operation-everything), for system and patient tokens alike."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from app.extensions import db
from oauth.models import OAuthClient
from oauth.validity import bump_epoch
from tests.conftest import token_request
from tests.fhir.conftest import FhirClient


@pytest.fixture
def record(fhir):
    """Anna's record: two Encounters in different years (one at a Location, seen by a
    Practitioner of an Organization), a prescription of a Medication, an undated Condition;
    and Bob, whose Encounter names another Practitioner."""
    fhir.put("/Organization/clinic", {"resourceType": "Organization", "id": "clinic", "name": "Clinic"})
    fhir.put(
        "/Practitioner/drwho",
        {"resourceType": "Practitioner", "id": "drwho", "name": [{"family": "Who"}]},
    )
    fhir.put(
        "/Practitioner/drbob", {"resourceType": "Practitioner", "id": "drbob", "name": [{"family": "B"}]}
    )
    fhir.put(
        "/Location/ward",
        {
            "resourceType": "Location",
            "id": "ward",
            "name": "Ward 3",
            "managingOrganization": {"reference": "Organization/clinic"},
        },
    )
    fhir.put(
        "/Medication/aspirin", {"resourceType": "Medication", "id": "aspirin", "code": {"text": "aspirin"}}
    )
    fhir.put("/Patient/anna", {"resourceType": "Patient", "id": "anna", "name": [{"family": "Anna"}]})
    fhir.put("/Patient/bob", {"resourceType": "Patient", "id": "bob", "name": [{"family": "Bob"}]})

    def encounter(eid: str, patient: str, year: int, practitioner: str) -> dict:
        return fhir.put(
            f"/Encounter/{eid}",
            {
                "resourceType": "Encounter",
                "id": eid,
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": f"Patient/{patient}"},
                "period": {"start": f"{year}-03-01T10:00:00Z", "end": f"{year}-03-01T11:00:00Z"},
                "participant": [{"individual": {"reference": f"Practitioner/{practitioner}"}}],
                "location": [{"location": {"reference": "Location/ward"}}],
                "serviceProvider": {"reference": "Organization/clinic"},
            },
        ).get_json()

    encounter("visit2020", "anna", 2020, "drwho")
    encounter("visit2024", "anna", 2024, "drwho")
    encounter("bobvisit", "bob", 2024, "drbob")
    fhir.put(
        "/MedicationRequest/rx",
        {
            "resourceType": "MedicationRequest",
            "id": "rx",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/anna"},
            "medicationReference": {"reference": "Medication/aspirin"},
            "authoredOn": "2024-03-01",
        },
    )
    fhir.put(
        "/Condition/asthma",
        {
            "resourceType": "Condition",
            "id": "asthma",
            "subject": {"reference": "Patient/anna"},
            "code": {"text": "asthma"},
        },
    )


def everything(fhir: FhirClient, query: str = "") -> tuple[set, set]:
    response = fhir.get(f"/Patient/anna/$everything{query}")
    assert response.status_code == 200, response.get_json()
    bundle = response.get_json()
    matches, includes = set(), set()
    while True:
        for entry in bundle.get("entry", []):
            key = (entry["resource"]["resourceType"], entry["resource"]["id"])
            (matches if entry["search"]["mode"] == "match" else includes).add(key)
        following = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        if following is None:
            return matches, includes
        bundle = fhir.client.get(following, headers=fhir.headers()).get_json()


MEMBERS = {
    ("Patient", "anna"),
    ("Encounter", "visit2020"),
    ("Encounter", "visit2024"),
    ("MedicationRequest", "rx"),
    ("Condition", "asthma"),
}
REFERENCED = {
    ("Practitioner", "drwho"),
    ("Location", "ward"),
    ("Organization", "clinic"),
    ("Medication", "aspirin"),
}


def patient_token(fhir, make, client, patient_id="anna", scope=None, app=None) -> FhirClient:
    credential = make.patient_credential(fhir.hospital, patient_id)  # (its scope changed below)
    if scope:
        with app.app_context():
            db.session.get(OAuthClient, credential.key).scope = scope
            bump_epoch()  # as every change to a client does: workers cache clients
            db.session.commit()
    return FhirClient(client, fhir.hospital, token_request(client, credential).get_json()["access_token"])


def test_everything_brings_the_resources_the_record_points_to(fhir, record):
    matches, includes = everything(fhir)
    assert matches == MEMBERS
    assert includes == REFERENCED  # not Bob's practitioner


def test_a_patient_token_gets_the_same_everything(fhir, make, client, record):
    matches, includes = everything(patient_token(fhir, make, client))
    assert matches == MEMBERS
    assert includes == REFERENCED


def test_type_narrows_members_and_includes(fhir, record):
    matches, includes = everything(fhir, "?_type=Encounter,Practitioner")
    assert matches == {("Encounter", "visit2020"), ("Encounter", "visit2024")}
    assert includes == {("Practitioner", "drwho")}


def test_type_naming_only_types_outside_the_compartment_gets_what_the_record_references(fhir, record):
    matches, includes = everything(fhir, "?_type=Practitioner,Medication")
    assert matches == set()
    assert includes == {("Practitioner", "drwho"), ("Medication", "aspirin")}


def test_since_keeps_what_changed_since(fhir, record):
    time.sleep(0.01)
    since = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    fhir.put(
        "/Condition/asthma",
        {
            "resourceType": "Condition",
            "id": "asthma",
            "subject": {"reference": "Patient/anna"},
            "code": {"text": "mild asthma"},
        },
    )
    matches, _ = everything(fhir, f"?_since={since}")
    assert matches == {("Condition", "asthma")}


def test_start_and_end_keep_the_care_period_and_the_undated(fhir, record):
    matches, includes = everything(fhir, "?start=2023-01-01&end=2024-12-31")
    # the Patient and the undated Condition are always in; the 2020 visit is not
    assert matches == MEMBERS - {("Encounter", "visit2020")}
    assert ("Practitioner", "drwho") in includes  # through the 2024 visit

    # the prescription has no date parameter value (MedicationRequest's date is its dosage
    # timing): undated, so in whatever the period
    matches, _ = everything(fhir, "?end=2021")
    assert matches == MEMBERS - {("Encounter", "visit2024")}


def test_count_pages_every_member_once(fhir, record):
    response = fhir.get("/Patient/anna/$everything?_count=2").get_json()
    assert len([e for e in response["entry"] if e["search"]["mode"] == "match"]) == 2
    matches, includes = everything(fhir, "?_count=2")
    assert matches == MEMBERS and includes == REFERENCED


@pytest.mark.parametrize(
    "query", ["?_since=bogus", "?start=nope", "?_type=Nonsense", "?_count=x", "?_sort=_id", "?x=1"]
)
def test_parameters_it_cannot_apply_are_400(fhir, record, query):
    response = fhir.get(f"/Patient/anna/$everything{query}")
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_the_self_link_lists_the_parameters_applied(fhir, record):
    bundle = fhir.get(
        "/Patient/anna/$everything?x=1&_type=Condition", headers={"Prefer": "handling=lenient"}
    ).get_json()
    self_url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert self_url.endswith("/Patient/anna/$everything?_type=Condition")


def test_a_patient_token_reads_shared_directory_resources_but_never_writes_them(
    fhir, make, client, app, record
):
    anna = patient_token(fhir, make, client, scope="patient/*.cruds", app=app)
    assert anna.get("/Practitioner/drbob").status_code == 200  # a directory, as in other SMART servers
    assert {e["resource"]["id"] for e in anna.search("Practitioner")["entry"]} == {"drwho", "drbob"}
    assert anna.get("/Encounter/bobvisit").status_code == 404  # Bob's record stays hidden
    assert anna.get("/Patient/anna/$everything?_type=Encounter").status_code == 200
    for response in (
        anna.put("/Practitioner/drwho", {"resourceType": "Practitioner", "id": "drwho"}),
        anna.delete("/Practitioner/drwho"),
        anna.post("/Medication", {"resourceType": "Medication"}),
    ):
        assert response.status_code == 403, response.get_json()
    assert fhir.get("/Practitioner/drwho").get_json()["name"] == [{"family": "Who"}]
