"""A patient's key pair with the same two choices as an app approval: which kinds of data, and
until when. The default stays all data, no end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.extensions import db
from app.timeutil import utcnow
from oauth.models import OAuthClient
from oauth.validity import bump_epoch
from tests.conftest import Credential, token_request
from tests.oauth.smart_launch import CSRF


@pytest.fixture
def patient(make):
    make.hospital("general")
    make.patient("general", "p1")
    return make.as_role("patient", "general", "p1")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def made(response) -> Credential:
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return Credential(body["key"], body["secret"], body)


def test_the_default_is_all_data_and_no_end(client, patient):
    cred = made(patient.post("/api/me/credentials", json={"name": "Diary"}))
    assert cred.body["permissions"] == ["patient/*.rs"] and cred.body["expires"] is None
    token = token_request(client, cred).get_json()["access_token"]
    assert client.get("/fhir/general/Observation", headers=bearer(token)).status_code == 200


def test_chosen_kinds_of_data_only(client, patient):
    cred = made(
        patient.post("/api/me/credentials", json={"name": "Steps", "permissions": ["patient/Observation.rs"]})
    )
    token = token_request(client, cred).get_json()["access_token"]
    assert client.get("/fhir/general/Observation", headers=bearer(token)).status_code == 200
    assert client.get("/fhir/general/Condition", headers=bearer(token)).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"permissions": ["system/*.rs"]},
        {"permissions": ["user/Observation.rs"]},
        {"permissions": []},
        {"permissions": ["patient/*.cruds"]},
        {"permissions": ["patient/Observation.write"]},
        {"permissions": "patient/*.rs"},
        {"expires": "forever"},
        {"expires": 3600},
    ],
)
def test_choices_that_cannot_be_made(patient, body):
    response = patient.post("/api/me/credentials", json={"name": "X", **body})
    assert response.status_code == 400 and response.get_json()["error"]


def test_the_chosen_end_is_honoured_by_the_token_endpoint_and_the_fhir_api(make, client, patient):
    cred = made(patient.post("/api/me/credentials", json={"name": "Trial", "expires": "1h"}))
    assert cred.body["expires"]
    token = token_request(client, cred).get_json()["access_token"]
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 200
    with make.app.app_context():
        # As if the hour had passed: the cached credential holds its end, and here it is now.
        db.session.execute(update(OAuthClient).values(expires_at=utcnow() - timedelta(seconds=1)))
        bump_epoch()
        db.session.commit()
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 401
    refused = token_request(client, cred)
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"


def test_the_portal_form_offers_the_same_choices(client, patient):
    page = patient.get("/portal/credentials/new").get_data(as_text=True)
    assert "Read your lab results, vital signs and other measurements" in page and "Until I revoke it" in page
    form_id = page.split('name="form_id" value="')[1].split('"')[0]
    kinds = [part.split('"')[0] for part in page.split('name="grant" value="')[1:]]
    ticked = [kind for kind in kinds if kind != "patient/Condition.rs"]
    created = patient.post(
        "/portal/credentials",
        data={
            "csrf_token": CSRF.search(page).group(1),
            "form_id": form_id,
            "kinds_offered": "1",
            "name": "Steps",
            "grant": ticked,
            "expiry": "30d",
        },
    )
    assert created.status_code == 200
    listed = patient.get("/api/me/credentials").get_json()[0]
    assert (
        "patient/Condition.rs" not in listed["permissions"]
        and "patient/Observation.rs" in listed["permissions"]
    )
    assert "patient/*.rs" not in listed["permissions"] and listed["expires"]
    nothing = patient.post(
        "/portal/credentials",
        data={
            "csrf_token": CSRF.search(page).group(1),
            "form_id": "f" * 24,
            "kinds_offered": "1",
            "name": "None",
            "expiry": "30d",
        },
    )
    assert nothing.status_code == 400 and "at least one kind" in nothing.get_data(as_text=True)
