"""The hospital admin portal: API keys from a permission grid, revocation, portal patients."""

from __future__ import annotations

import re

import pytest

from tests.conftest import token_request
from tests.web.conftest import hidden


@pytest.fixture
def admin(app, make, browser_login):
    make.hospital("general")
    make.hospital("other")
    make.patient("general", "p1")
    return browser_login(make.user("hospital-admin", "general"))


def create_key(client, boxes, name="CRM", ttl="3600", **extra):
    form = client.get("/admin/general/api-keys/new")
    data = {
        "name": name,
        "token_ttl": ttl,
        "csrf_token": hidden(form.data, "csrf_token"),
        "form_id": hidden(form.data, "form_id"),
        **{f"perm:{box}": "on" for box in boxes},
        **extra,
    }
    return client.post("/admin/general/api-keys", data=data), data


def value_of(page: bytes, field: str) -> str:
    return re.search(rf'id="{field}" value="([^"]+)"'.encode(), page).group(1).decode()


def test_the_grid_becomes_smart_v2_scopes_and_the_key_works_within_them(app, admin):
    created, sent = create_key(admin, ["Patient:r", "Patient:s", "Observation:r", "Observation:s"])
    assert created.status_code == 200, created.data[:300]
    assert b"system/Patient.rs" in created.data and b"system/Observation.rs" in created.data
    token = value_of(created.data, "new-token")
    fhir = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert fhir.get("/fhir/general/Patient/p1", headers=auth).status_code == 200
    create = fhir.post("/fhir/general/Patient", json={"resourceType": "Patient"}, headers=auth)
    assert create.status_code == 403
    again = admin.post("/admin/general/api-keys", data=sent)
    assert again.status_code == 409 and value_of(created.data, "new-secret").encode() not in again.data
    assert admin.get("/admin/general").data.count(b'aria-label="Revoke CRM"') == 1


def test_revoking_a_key_kills_its_token(app, admin):
    created, _ = create_key(admin, ["*:r"])
    key, token = value_of(created.data, "new-key"), value_of(created.data, "new-token")
    confirm = admin.get(f"/admin/general/api-keys/{key}/revoke")
    done = admin.post(
        f"/admin/general/api-keys/{key}/revoke", data={"csrf_token": hidden(confirm.data, "csrf_token")}
    )
    assert done.status_code == 303 and b"was revoked" in admin.get(done.headers["Location"]).data
    read = app.test_client().get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 401


def test_bad_key_forms_are_explained(admin):
    assert create_key(admin, [])[0].status_code == 400
    assert b"at least one permission" in create_key(admin, [])[0].data
    assert b"Token lifetime" in create_key(admin, ["Patient:r"], ttl="5")[0].data
    assert b"Enter a name" in create_key(admin, ["Patient:r"], name=" ")[0].data


def test_an_admin_cannot_open_another_hospitals_pages(make, admin, browser_login):
    for path in ("/admin/other", "/admin/other/api-keys/new"):
        assert admin.get(path).status_code == 403, path
    page = admin.get("/admin/general")
    assert (
        admin.post("/admin/other/patients", data={"csrf_token": hidden(page.data, "csrf_token")}).status_code
        == 403
    )
    assert admin.get("/admin/nowhere").status_code == 403  # not its hospital: no hint whether it exists
    patient = browser_login(make.user("patient", "general", "p1"))
    assert patient.get("/admin/general").status_code == 403


def test_enabling_a_patient_for_the_portal(app, admin):
    page = admin.get("/admin/general")
    token = hidden(page.data, "csrf_token")
    data = {
        "csrf_token": token,
        "patient_id": "p1",
        "email": "anna@example.org",
        "password": "a long first password",
    }
    done = admin.post("/admin/general/patients", data=data)
    assert done.status_code == 303
    assert admin.post("/admin/general/patients", data={**data, "patient_id": "nobody"}).status_code == 404
    client = app.test_client()  # the patient logs in with it
    form = client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": "anna@example.org",
            "password": "a long first password",
            "csrf_token": hidden(form.data, "csrf_token"),
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == "/portal"


def test_the_audit_trail_shows_and_filters_fhir_requests(app, admin):
    created, _ = create_key(admin, ["Patient:r"])
    key, token = value_of(created.data, "new-key"), value_of(created.data, "new-token")
    app.test_client().get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"})
    app.extensions["fhirgate_audit"].flush()
    page = admin.get(f"/admin/general?client={key}&outcome=success")
    assert b"Patient/p1" in page.data
    assert b"Patient/p1" not in admin.get(f"/admin/general?client={key}&outcome=failure").data


def test_granting_and_withdrawing_an_applications_access(app, make, admin):
    application = make.application()
    page = admin.get("/admin/general")
    token = hidden(page.data, "csrf_token")
    data = {"csrf_token": token, "client_id": application.key, "perm:Patient:r": "on", "perm:Patient:s": "on"}
    assert admin.post("/admin/general/apps", data=data).status_code == 303
    listed = admin.get("/admin/general?notice=granted")
    assert b"has access now" in listed.data and b"system/Patient.rs" in listed.data
    access = token_request(
        app.test_client(), application, resource="http://localhost/fhir/general"
    ).get_json()
    auth = {"Authorization": f"Bearer {access['access_token']}"}
    assert app.test_client().get("/fhir/general/Patient/p1", headers=auth).status_code == 200
    done = admin.post(f"/admin/general/apps/{application.key}/withdraw", data={"csrf_token": token})
    assert done.status_code == 303
    assert app.test_client().get("/fhir/general/Patient/p1", headers=auth).status_code == 401
    assert admin.post("/admin/general/apps", data={**data, "client_id": "app_nope"}).status_code == 404


def test_an_application_asks_in_the_developer_portal_and_the_admin_grants_as_asked(
    app, make, admin, browser_login
):
    make.hospital("sandbox")
    developer = browser_login(make.user("developer"))
    created = make.application(developer)
    page = developer.get(f"/developer/apps/{created.key}")
    csrf = hidden(page.data, "csrf_token")
    ask = {"csrf_token": csrf, "hospital": "general", "perm:Patient:r": "on", "perm:Patient:s": "on"}
    sent = developer.post(
        f"/developer/apps/{created.key}/access-requests", data={**ask, "message": "Reminders"}
    )
    assert sent.status_code == 303
    assert b"waiting since" in developer.get(f"/developer/apps/{created.key}").data
    refused = developer.post(
        f"/developer/apps/{created.key}/access-requests", data={**ask, "hospital": "nope"}
    )
    assert refused.status_code == 400 and b"no hospital with this id" in refused.data

    home = admin.get("/admin/general").data.decode()
    assert "Asking for access" in home and created.key in home and "Reminders" in home
    token = hidden(home, "csrf_token")
    shown = hidden(home, "scope")
    assert shown == "system/Patient.rs"
    # The developer asks for more after the admin's page was drawn: "grant as asked" grants nothing.
    developer.post(f"/developer/apps/{created.key}/access-requests", data={**ask, "perm:*:c": "on"})
    grant = f"/admin/general/requests/{created.key}/grant"
    assert admin.post(grant, data={"csrf_token": token, "scope": shown}).status_code == 409
    home = admin.get("/admin/general").data.decode()
    assert admin.post(grant, data={"csrf_token": token, "scope": hidden(home, "scope")}).status_code == 303
    after = admin.get("/admin/general").data.decode()
    assert "Asking for access" not in after and "system/*.c" in after
    access = token_request(app.test_client(), created, resource="http://localhost/fhir/general")
    assert access.status_code == 200 and access.get_json()["scope"] == "system/*.c system/Patient.rs"


def test_the_admin_declines_a_request_and_others_cannot(app, make, admin, browser_login):
    application = make.application()
    make.login(make.user("superadmin")).post(
        f"/api/apps/{application.key}/access-requests",
        json={"hospital": "general", "permissions": ["system/Observation.rs"]},
    )
    other = browser_login(make.user("hospital-admin", "other"))
    other_token = hidden(other.get("/admin/other").data, "csrf_token")
    forbidden = other.post(
        f"/admin/general/requests/{application.key}/decline", data={"csrf_token": other_token}
    )
    assert forbidden.status_code == 403
    token = hidden(admin.get("/admin/general").data, "csrf_token")
    declined = admin.post(f"/admin/general/requests/{application.key}/decline", data={"csrf_token": token})
    assert declined.status_code == 303
    assert b"request was declined" in admin.get(declined.headers["Location"]).data
    again = admin.post(f"/admin/general/requests/{application.key}/grant", data={"csrf_token": token})
    assert again.status_code == 404
    nul = admin.post("/admin/general/requests/app%00x/decline", data={"csrf_token": token})
    assert nul.status_code == 400  # refused before any view (app.input_check)
