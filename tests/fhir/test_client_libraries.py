"""FHIR client libraries written by others work against a running server.

The session app is served on an ephemeral loopback port in a background thread. For the
duration of each test its FHIRGATE_BASE_URL is the socket's own address, as a deployment
configures it: Bundle links and fullUrls then point back at the server the client talks
to, and the token's ``aud`` is that server's FHIR base. The token comes from the real
token endpoint (client_credentials, client_secret_basic) through ``requests``.

- fhirpy's SyncFHIRClient creates, reads, searches, pages, updates and deletes.
- fhirclient (SMART on FHIR's Python client) reads a Patient and searches Observations.
"""

from __future__ import annotations

import pytest
from fhirclient import client as smart_client
from fhirclient.auth import FHIRAuth
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

TIMEOUT = 10
HOSPITAL = "general"
LOINC = "http://loinc.org"
HEART_RATE = "8867-4"
BODY_WEIGHT = "29463-7"
APP_ID = "fhirgate-test"


@pytest.fixture
def fhirpy(fhir_base, access_token) -> SyncFHIRClient:
    return SyncFHIRClient(
        fhir_base, authorization=f"Bearer {access_token}", requests_config={"timeout": TIMEOUT}
    )


def _smart(fhir_base: str, access_token: str | None = None) -> smart_client.FHIRClient:
    """fhirclient bound to the FHIR base; with a token, its own OAuth2 auth signs every request."""
    smart = smart_client.FHIRClient(settings={"app_id": APP_ID, "api_base": fhir_base})
    if access_token is not None:
        smart.server.auth = FHIRAuth.create("oauth2", state={"app_id": APP_ID, "access_token": access_token})
    return smart


def _observation(client: SyncFHIRClient, patient, code: str, value: float, unit: str):
    return client.resource(
        "Observation",
        status="final",
        code={"coding": [{"system": LOINC, "code": code}]},
        subject=patient.to_reference(),
        effectiveDateTime="2024-05-01T10:00:00Z",
        valueQuantity={"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    )


def _patient(client: SyncFHIRClient, family: str, given: str):
    patient = client.resource(
        "Patient", name=[{"family": family, "given": [given]}], gender="female", birthDate="1980-02-03"
    )
    patient.save()
    return patient


def test_fhirpy_creates_reads_searches_updates_and_deletes(fhirpy):
    patient = _patient(fhirpy, "Quixotica", "Zephyrine")
    other = _patient(fhirpy, "Ordinary", "Anne")
    assert patient.id and patient["meta"]["versionId"] == "1"

    heart = _observation(fhirpy, patient, HEART_RATE, 72, "/min")
    heart.save()
    weight = _observation(fhirpy, patient, BODY_WEIGHT, 61.5, "kg")
    weight.save()
    _observation(fhirpy, other, HEART_RATE, 90, "/min").save()
    assert heart.id and weight.id and heart.id != weight.id

    # Read: by reference, by plain GET and by _id search.
    read = fhirpy.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["family"] == "Quixotica"
    assert read["birthDate"] == "1980-02-03"
    assert fhirpy.get("Observation", heart.id)["subject"]["reference"] == f"Patient/{patient.id}"
    assert fhirpy.resources("Patient").search(_id=patient.id).get().id == patient.id

    # Search with parameters.
    found = fhirpy.resources("Observation").search(subject=patient, code=f"{LOINC}|{HEART_RATE}").fetch()
    assert [o.id for o in found] == [heart.id]
    by_subject = fhirpy.resources("Observation").search(subject=f"Patient/{patient.id}").fetch_all()
    assert {o.id for o in by_subject} == {heart.id, weight.id}
    assert [p.id for p in fhirpy.resources("Patient").search(name="Zephyrine").fetch()] == [patient.id]
    assert [p.id for p in fhirpy.resources("Patient").search(family="quix").fetch()] == [patient.id]
    assert fhirpy.resources("Patient").search(name="Nobody").fetch() == []

    # Update (PUT) and read the new version back.
    patient["birthDate"] = "1981-03-04"
    patient.save()
    assert patient["meta"]["versionId"] == "2"
    assert fhirpy.reference("Patient", patient.id).to_resource()["birthDate"] == "1981-03-04"

    # Delete: the resource is gone for reads and searches.
    weight.delete()
    with pytest.raises(ResourceNotFound):
        fhirpy.reference("Observation", weight.id).to_resource()
    remaining = fhirpy.resources("Observation").search(subject=patient).fetch_all()
    assert [o.id for o in remaining] == [heart.id]


def test_fhirpy_pages_through_search_results(fhirpy, fhir_base):
    patient = _patient(fhirpy, "Pager", "Paula")
    created = set()
    for minute in range(25):
        observation = _observation(fhirpy, patient, HEART_RATE, 60 + minute, "/min")
        observation.save()
        created.add(observation.id)
    _observation(fhirpy, _patient(fhirpy, "Elsewhere", "Ed"), HEART_RATE, 70, "/min").save()
    assert len(created) == 25

    search = fhirpy.resources("Observation").search(subject=patient).limit(10)

    first = search.fetch_raw()
    assert len(first.entry) == 10
    assert first.total == 25
    next_url = next(link.url for link in first.link if link.relation == "next")
    assert next_url.startswith(f"{fhir_base}/Observation?")

    # fetch_all() iterates the search set, following each page's absolute next link.
    seen = [o.id for o in search.fetch_all()]
    assert len(seen) == 25
    assert set(seen) == created


def test_fhirclient_reads_patient_and_searches_observations(fhirpy, fhir_base, access_token):
    patient = _patient(fhirpy, "Smartson", "Sam")
    ids = set()
    for code, value, unit in [(HEART_RATE, 64, "/min"), (BODY_WEIGHT, 70.2, "kg")]:
        observation = _observation(fhirpy, patient, code, value, unit)
        observation.save()
        ids.add(observation.id)
    _observation(fhirpy, _patient(fhirpy, "Other", "Olga"), HEART_RATE, 80, "/min").save()

    smart = _smart(fhir_base, access_token)
    assert smart.ready

    read = Patient.read(patient.id, smart.server)
    assert read.id == patient.id
    assert read.name[0].family == "Smartson"
    assert read.name[0].given == ["Sam"]
    assert read.birthDate.isostring == "1980-02-03"

    search = Observation.where(struct={"subject": f"Patient/{patient.id}"})
    observations = list(search.perform_resources_iter(smart.server))
    assert {o.id for o in observations} == ids
    assert all(o.subject.reference == f"Patient/{patient.id}" for o in observations)
    assert {o.code.coding[0].code for o in observations} == {HEART_RATE, BODY_WEIGHT}

    by_code = Observation.where(struct={"subject": f"Patient/{patient.id}", "code": BODY_WEIGHT})
    [weight] = list(by_code.perform_resources_iter(smart.server))
    assert weight.valueQuantity.value == 70.2
    assert weight.valueQuantity.unit == "kg"


def test_fhirclient_follows_next_links(fhirpy, fhir_base, access_token):
    patient = _patient(fhirpy, "Pagesmith", "Pia")
    created = set()
    for minute in range(12):
        observation = _observation(fhirpy, patient, HEART_RATE, 60 + minute, "/min")
        observation.save()
        created.add(observation.id)

    smart = _smart(fhir_base, access_token)

    search = Observation.where(struct={"subject": f"Patient/{patient.id}", "_count": "5"})
    bundles = list(search.perform_iter(smart.server))
    assert [len(b.entry or []) for b in bundles] == [5, 5, 2]
    assert sorted(e.resource.id for b in bundles for e in b.entry) == sorted(created)


def test_fhirclient_without_token_is_refused(fhirpy, fhir_base):
    """The same read without the bearer token is a 401, which fhirclient raises as such."""
    patient = _patient(fhirpy, "Private", "Pat")
    smart = _smart(fhir_base)
    with pytest.raises(smart_client.FHIRUnauthorizedException):
        Patient.read(patient.id, smart.server)


def test_fhirclient_discovers_token_endpoint_and_authorizes_itself(make, server_url, fhir_base):
    """fhirclient's own backend flow: token URI from the CapabilityStatement's SMART
    oauth-uris extension, then client_credentials with HTTP Basic client authentication."""
    make.hospital(HOSPITAL)
    make.patient(HOSPITAL, "p1", family="Discovered")
    cred = make.api_key(HOSPITAL, permissions=["system/Patient.rs"])
    settings = {
        "app_id": cred.key,
        "app_secret": cred.secret,
        "api_base": fhir_base,
        "scope": "system/Patient.rs",
    }
    smart = smart_client.FHIRClient(settings=settings)
    # fhirclient otherwise prepends the app-launch scope launch/patient, which a
    # client_credentials grant rightly refuses (invalid_scope).
    smart.wants_patient = False

    assert smart.prepare() is False  # CapabilityStatement fetched, no token yet
    assert smart.server.auth.state["token_uri"] == f"{server_url}/oauth/token"
    smart.authorize()
    assert smart.ready
    assert smart.launch_context["scope"] == "system/Patient.rs"
    assert Patient.read("p1", smart.server).name[0].family == "Discovered"
