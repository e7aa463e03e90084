"""A NUL byte (or another control character) reaches no query: a 400 in each surface's format.

PostgreSQL's text types cannot hold U+0000. The red-team review still got it through to the
database in about twelve places, each a 500. Every place it named is tried here; the suite runs
on PostgreSQL (TEST_DATABASE_URL), where a NUL that slips through fails, and on SQLite.
"""

from __future__ import annotations

import pytest

from tests.conftest import token_request
from tests.fhir.conftest import FhirClient
from tests.web.conftest import hidden


@pytest.fixture
def fhir(client, make) -> FhirClient:
    make.hospital("general")
    make.patient("general", "p1")
    cred = make.api_key("general", permissions=["system/*.cruds"])
    return FhirClient(client, "general", cred.body["token"])


def outcome(response) -> None:
    """A 400 OperationOutcome."""
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "invalid"


def api_error(response) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert set(response.get_json()) == {"error", "message"}


def html_page(response) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/html" and b"control character" in response.data


@pytest.mark.parametrize(
    "path",
    [
        "/Patient?name=a&name=b%00",  # a repeated key: each of its values
        "/Patient?name=a%00b",
        "/Patient?_id=%00",
        "/Patient?name%00=x",
        "/Observation?subject:Patient.name=%00",
        "/Patient?_sort=%00",
        "/Patient?_include=Patient:%00",
        "/Patient?name=a%0Ab",
        "/Patient/%00",
        "/Patient/p1/$everything?_count=%00",
        "/_history?_cursor=%00",
    ],
)
def test_search_urls(fhir, path):
    outcome(fhir.get(path))


def test_post_search_form_fields(fhir):
    form = "application/x-www-form-urlencoded"
    outcome(fhir.post("/Patient/_search", "name=a%00", content_type=form))
    outcome(fhir.post("/Patient/_search", "name=a&name=b%00", content_type=form))
    outcome(fhir.post("/Patient/_search", "na%00me=a", content_type=form))


PATIENT = {"resourceType": "Patient", "identifier": [{"system": "http://x", "value": "1"}]}


def test_conditional_criteria(fhir):
    outcome(fhir.post("/Patient", PATIENT, headers={"If-None-Exist": "identifier=%00"}))
    outcome(fhir.post("/Patient", PATIENT, headers={"If-None-Exist": "identifier=\x00"}))
    outcome(fhir.put("/Patient?identifier=http://x|%00", PATIENT))
    outcome(fhir.delete("/Patient?identifier=%00"))


def test_headers_the_fhir_api_reads(fhir):
    outcome(
        fhir.put("/Patient/p1", {"resourceType": "Patient", "id": "p1"}, headers={"If-Match": 'W/"1\x00"'})
    )
    outcome(fhir.post("/Patient", PATIENT, headers={"Prefer": "return=minimal\x00"}))
    outcome(fhir.get("/Patient/p1", headers={"Accept": "application/fhir+json\x00"}))


def _entry(method: str, url: str, **request) -> dict:
    entry: dict = {"request": {"method": method, "url": url, **request}}
    if method in ("POST", "PUT"):
        entry["resource"] = PATIENT
    return entry


@pytest.mark.parametrize(
    "entry",
    [
        _entry("GET", "Patient?name=%00"),
        _entry("GET", "Patient?name=a&name=%00"),
        _entry("GET", "Patient?_sort=%00"),
        _entry("PUT", "Patient?identifier=%00"),
        _entry("DELETE", "Patient?identifier=%00"),
        _entry("POST", "Patient", ifNoneExist="identifier=%00"),
        {
            "request": {"method": "POST", "url": "Observation"},
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": "Patient?identifier=%00"},
            },
        },
    ],
)
def test_bundle_entry_urls(fhir, entry):
    outcome(fhir.post("/", {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}))
    batch = fhir.post("/", {"resourceType": "Bundle", "type": "batch", "entry": [entry]})
    assert batch.status_code == 200
    assert batch.get_json()["entry"][0]["response"]["status"] == "400"


def test_scope_restrictions(client, make, fhir):
    admin = make.as_role("hospital-admin", "general")
    refused = admin.post(
        "/api/hospitals/general/api-keys",
        json={"name": "CRM", "permissions": ["system/Observation.rs?code=%00"]},
    )
    api_error(refused)
    key = make.api_key("general", permissions=["system/Observation.rs"])
    narrowed = token_request(client, key, scope="system/Observation.rs?code=%00")
    assert narrowed.status_code == 400 and narrowed.get_json()["error"] in (
        "invalid_scope",
        "invalid_request",
    )


def test_the_audit_events_api(make, fhir):
    admin = make.as_role("hospital-admin", "general")
    for name in ("client", "patient", "interaction"):
        api_error(admin.get(f"/api/hospitals/general/audit-events?{name}=%00"))
    api_error(admin.get("/api/hospitals/general/audit-events?client=a&client=%00"))


def test_management_api_paths_and_queries(make):
    developer = make.as_role("developer")
    api_error(developer.get("/api/apps/%00"))
    api_error(developer.get("/api/apps?x=%00"))
    api_error(developer.post("/api/apps", json={"name": "x"}, headers={"X-Anything": "\x00"}))


def test_oauth_form_fields_and_paths(client, make):
    make.hospital("general")
    key = make.api_key("general")
    for form in ({"scope": "system/Patient.rs\x00"}, {"resource": "\x00"}, {"x\x00": "y"}):
        response = token_request(client, key, **form)
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_request", form
    introspect = client.post(
        "/oauth/introspect", data={"token": "a\x00"}, headers={"Authorization": "Basic x"}
    )
    assert introspect.status_code == 400 and introspect.get_json()["error"] == "invalid_request"


def test_portal_forms(make):
    admin = make.as_role("hospital-admin", make.hospital("general"))
    token = hidden(admin.get("/admin/general").data, "csrf_token")
    html_page(admin.post("/admin/general/api-keys", data={"csrf_token": token, "name": "CRM\x00"}))
    html_page(admin.post("/admin/general/requests/app%00x/decline", data={"csrf_token": token}))
    html_page(admin.get("/admin/general?client=%00"))
    developer = make.as_role("developer")
    token = hidden(developer.get("/developer").data, "csrf_token")
    html_page(developer.post("/developer/apps", data={"csrf_token": token, "name": "App\x00"}))
    make.patient("general", "p1")
    patient = make.as_role("patient", "general", "p1")
    page = patient.get("/portal/credentials/new").data
    form = {
        "csrf_token": hidden(page, "csrf_token"),
        "form_id": hidden(page, "form_id"),
        "name": "My app\x00",
    }
    html_page(patient.post("/portal/credentials", data=form))
    login = make.app.test_client()
    token = hidden(login.get("/login").data, "csrf_token")
    html_page(login.post("/login", data={"csrf_token": token, "email": "a\x00@b.co", "password": "x"}))
