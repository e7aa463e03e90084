"""The patient portal: credentials generated, shown once, used, inspected and deleted."""

from __future__ import annotations

import base64
import re

import pytest

from tests.web.conftest import hidden


@pytest.fixture
def patient(app, make, browser_login):
    make.hospital("general")
    make.patient("general", "p1", family="Müller")
    make.patient("general", "p2", family="Other")
    return browser_login(make.user("patient", "general", "p1"))


def generate(client, name="Health App"):
    form = client.get("/portal/credentials/new")
    data = {
        "name": name,
        "csrf_token": hidden(form.data, "csrf_token"),
        "form_id": hidden(form.data, "form_id"),
    }
    return client.post("/portal/credentials", data=data), data


def shown_values(page: bytes) -> tuple[str, str]:
    key = re.search(rb'id="new-key" value="([^"]+)"', page).group(1).decode()
    secret = re.search(rb'id="new-secret" value="([^"]+)"', page).group(1).decode()
    return key, secret


def token_for(client, key, secret):
    basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    return response


def test_generated_credentials_are_shown_once_and_work(app, patient):
    page = patient.get("/portal")
    assert b"My History" in page.data and b"FHIR API Access" in page.data and b"M\xc3\xbcller" in page.data
    created, sent = generate(patient)
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    key, secret = shown_values(created.data)
    assert b"cannot be shown again" in created.data
    token = token_for(app.test_client(), key, secret).get_json()["access_token"]
    read = app.test_client().get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200
    # the same form again (reload, back button): nothing new, no secret
    again = patient.post("/portal/credentials", data=sent)
    assert again.status_code == 409 and secret.encode() not in again.data and b"not shown again" in again.data
    listing = patient.get("/portal")
    assert key.encode() in listing.data and secret.encode() not in listing.data
    assert listing.data.count(b'aria-label="Delete Health App"') == 1  # one credential, not two


def test_deleting_asks_then_cuts_the_app_off(app, patient):
    created, _ = generate(patient)
    key, secret = shown_values(created.data)
    token = token_for(app.test_client(), key, secret).get_json()["access_token"]
    confirm = patient.get(f"/portal/credentials/{key}/delete")
    assert confirm.status_code == 200 and b"Delete" in confirm.data
    done = patient.post(
        f"/portal/credentials/{key}/delete", data={"csrf_token": hidden(confirm.data, "csrf_token")}
    )
    assert done.status_code == 303
    notice = patient.get(done.headers["Location"])
    assert b"were deleted" in notice.data and key.encode() not in notice.data
    refused = app.test_client().get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401


def test_the_access_history_lists_what_the_app_read(app, patient):
    created, _ = generate(patient)
    key, secret = shown_values(created.data)
    token = token_for(app.test_client(), key, secret).get_json()["access_token"]
    app.test_client().get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"})
    app.extensions["fhirgate_audit"].flush()
    history = patient.get(f"/portal/credentials/{key}")
    assert history.status_code == 200
    assert b"Patient/p1" in history.data and b"success" in history.data


def test_a_patient_cannot_open_another_patients_credentials(app, make, patient, browser_login):
    created, _ = generate(patient)
    key, _ = shown_values(created.data)
    other = browser_login(make.user("patient", "general", "p2"))
    for path in (f"/portal/credentials/{key}", f"/portal/credentials/{key}/delete"):
        assert other.get(path).status_code == 404, path
    page = other.get("/portal")
    response = other.post(
        f"/portal/credentials/{key}/delete", data={"csrf_token": hidden(page.data, "csrf_token")}
    )
    assert response.status_code == 404
    assert key.encode() in patient.get("/portal").data  # still there


def test_other_roles_cannot_open_the_patient_portal(app, make, browser_login):
    make.hospital("general")
    developer = browser_login(make.user("developer"))
    assert developer.get("/portal").status_code == 403
    assert app.test_client().get("/portal").status_code == 303  # not logged in: to the login page


def test_a_name_is_required(patient):
    form = patient.get("/portal/credentials/new")
    data = {
        "name": "  ",
        "csrf_token": hidden(form.data, "csrf_token"),
        "form_id": hidden(form.data, "form_id"),
    }
    response = patient.post("/portal/credentials", data=data)
    assert response.status_code == 400 and b"Enter a name" in response.data
