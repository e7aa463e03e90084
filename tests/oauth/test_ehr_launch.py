"""EHR launch (SMART App Launch 2.x): a clinician opens a patient on the EHR page and launches a
granted application at its launch URL with iss and a single-use launch; the authorization
request exchanges the launch for the patient context; user/ scopes reach what the clinician's
role allows at the hospital, patient/ scopes the launched patient only. Also the suites' EHR
checks (CONFORMANCE.md §3): iss equal to the FHIR base, patient, smart_style_url and
need_patient_banner in the token response."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.extensions import db
from app.timeutil import utcnow
from oauth.models import LaunchContext
from tests.conftest import BASE_URL
from tests.oauth.smart_launch import AUD, CSRF, Launch, query_of, smart_app

LAUNCH_URI = "https://app.example/launch"
EHR_SCOPE = "launch openid fhirUser offline_access user/*.rs"


@pytest.fixture
def ehr(make):
    make.hospital("general", "General Hospital")
    make.hospital("north", "North")
    make.patient("general", "p1", "Doe")
    make.patient("general", "p2", "Roe")
    admin = make.as_role("hospital-admin", "general")
    registered = smart_app(make, launch_uri=LAUNCH_URI)
    granted = admin.put(
        f"/api/hospitals/general/apps/{registered.key}", json={"permissions": ["system/Patient.rs"]}
    )
    assert granted.status_code == 201
    created = admin.post(
        "/api/hospitals/general/clinicians", json={"email": "dr.who@example.org", "password": "x" * 12}
    )
    assert created.status_code == 201, created.get_json()
    clinician = make.app.test_client()
    assert (
        clinician.post("/api/session", json={"email": "dr.who@example.org", "password": "x" * 12}).status_code
        == 200
    )
    return {"app": registered, "clinician": clinician, "admin": admin}


def launch_from_ehr(browser, registered, patient="p1") -> dict:
    page = browser.get("/ehr").get_data(as_text=True)
    assert "Patient/p1" in page and "Steps" in page
    response = browser.post(
        "/ehr/launch",
        data={"csrf_token": CSRF.search(page).group(1), "patient": patient, "app": registered.key},
    )
    assert response.status_code == 303 and response.headers["Location"].startswith(LAUNCH_URI + "?")
    return query_of(response.headers["Location"])


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_clinician_launches_an_app_with_user_scopes(client, ehr):
    sent = launch_from_ehr(ehr["clinician"], ehr["app"])
    assert sent["iss"] == AUD and sent["launch"]  # iss exactly the FHIR base URL
    launch = Launch(
        ehr["app"].key, ehr["app"].secret, scope=EHR_SCOPE, aud=sent["iss"], extra={"launch": sent["launch"]}
    )
    page = launch.consent(ehr["clinician"]).get_data(as_text=True)
    assert "work with you on Patient/p1" in page and "every record you can see at this hospital" in page
    assert "fhirUser" in page  # named as not granted: a staff account has no FHIR resource
    body = launch.exchange(client, launch.code(ehr["clinician"])).get_json()
    assert body["patient"] == "p1" and body["need_patient_banner"] is True
    assert body["scope"].split() == ["launch", "openid", "offline_access", "user/*.rs"]
    style = client.get(body["smart_style_url"].removeprefix(BASE_URL))
    assert (
        style.status_code == 200
        and style.mimetype == "application/json"
        and style.get_json()["color_background"]
    )

    token = body["access_token"]
    # user/ scopes: what the clinician's role shows at the hospital, every patient's record
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 200
    assert client.get("/fhir/general/Patient/p2", headers=bearer(token)).status_code == 200
    assert client.get("/fhir/general/AuditEvent", headers=bearer(token)).status_code == 403
    created = client.post("/fhir/general/Patient", json={"resourceType": "Patient"}, headers=bearer(token))
    assert created.status_code == 403
    assert client.get("/fhir/north/Patient/p1", headers=bearer(token)).status_code == 401
    assert launch.refresh(client, body["refresh_token"]).status_code == 200
    # the ID token names the clinician's account, and no fhirUser
    info = client.get("/oauth/userinfo", headers=bearer(token)).get_json()
    assert info["sub"] and "fhirUser" not in info


def test_an_ehr_launch_with_patient_scopes_reaches_the_launched_patient_only(client, ehr):
    sent = launch_from_ehr(ehr["clinician"], ehr["app"])
    scope = "launch openid offline_access patient/Patient.rs"
    launch = Launch(ehr["app"].key, ehr["app"].secret, scope=scope, extra={"launch": sent["launch"]})
    body = launch.exchange(client, launch.code(ehr["clinician"])).get_json()
    assert body["patient"] == "p1" and "patient/Patient.rs" in body["scope"].split()
    assert client.get("/fhir/general/Patient/p1", headers=bearer(body["access_token"])).status_code == 200
    assert client.get("/fhir/general/Patient/p2", headers=bearer(body["access_token"])).status_code == 404


def test_what_the_role_does_not_allow_is_not_granted(client, ehr):
    sent = launch_from_ehr(ehr["clinician"], ehr["app"])
    scope = "launch user/*.cruds user/Observation.rs system/*.rs patient/Patient.rs"
    launch = Launch(ehr["app"].key, ehr["app"].secret, scope=scope, extra={"launch": sent["launch"]})
    page = launch.consent(ehr["clinician"]).get_data(as_text=True)
    assert "Your role does not allow this" in page and "API keys hold system/ access" in page
    body = launch.exchange(client, launch.code(ehr["clinician"])).get_json()
    assert body["scope"] == "launch user/Observation.rs"


def test_a_launch_is_used_once(client, ehr):
    sent = launch_from_ehr(ehr["clinician"], ehr["app"])
    launch = Launch(ehr["app"].key, ehr["app"].secret, scope=EHR_SCOPE, extra={"launch": sent["launch"]})
    launch.code(ehr["clinician"])
    again = Launch(ehr["app"].key, ehr["app"].secret, scope=EHR_SCOPE, extra={"launch": sent["launch"]})
    response = ehr["clinician"].get(again.authorize_url())
    assert (
        response.status_code == 303 and query_of(response.headers["Location"])["error"] == "invalid_request"
    )


def test_a_launch_is_bound_to_its_app_hospital_and_clinician(make, client, ehr):
    sent = launch_from_ehr(ehr["clinician"], ehr["app"])
    other_app = smart_app(make)
    stolen = Launch(other_app.key, other_app.secret, scope=EHR_SCOPE, extra={"launch": sent["launch"]})
    response = ehr["clinician"].get(stolen.authorize_url())
    assert query_of(response.headers["Location"])["error"] == "invalid_request"
    elsewhere = Launch(
        ehr["app"].key,
        ehr["app"].secret,
        scope=EHR_SCOPE,
        aud=f"{BASE_URL}/fhir/north",
        extra={"launch": sent["launch"]},
    )
    assert (
        query_of(ehr["clinician"].get(elsewhere.authorize_url()).headers["Location"])["error"]
        == "invalid_request"
    )

    launch = Launch(ehr["app"].key, ehr["app"].secret, scope=EHR_SCOPE, extra={"launch": sent["launch"]})
    ehr["admin"].post(
        "/api/hospitals/general/clinicians", json={"email": "dr.no@example.org", "password": "y" * 12}
    )
    colleague = make.app.test_client()
    colleague.post("/api/session", json={"email": "dr.no@example.org", "password": "y" * 12})
    assert "Only the clinician who launched" in launch.consent(colleague).get_data(as_text=True)
    assert launch.decide(colleague).status_code == 403
    patient = make.as_role("patient", "general", "p1")
    assert launch.decide(patient).status_code == 403
    # and the launch is still unused: its clinician can go on
    assert launch.code(ehr["clinician"])


def test_an_expired_launch_is_refused(make, ehr):
    sent = launch_from_ehr(ehr["clinician"], ehr["app"])
    with make.app.app_context():
        db.session.execute(update(LaunchContext).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    launch = Launch(ehr["app"].key, ehr["app"].secret, scope=EHR_SCOPE, extra={"launch": sent["launch"]})
    assert (
        query_of(ehr["clinician"].get(launch.authorize_url()).headers["Location"])["error"]
        == "invalid_request"
    )


def test_only_granted_apps_with_a_launch_url_and_only_clinicians(make, client, ehr):
    ungranted = smart_app(make, launch_uri="https://other.example/launch")
    page = ehr["clinician"].get("/ehr").get_data(as_text=True)
    assert ungranted.key not in page
    forged = ehr["clinician"].post(
        "/ehr/launch", data={"csrf_token": CSRF.search(page).group(1), "patient": "p1", "app": ungranted.key}
    )
    assert forged.status_code == 404
    nobody = ehr["clinician"].post(
        "/ehr/launch",
        data={"csrf_token": CSRF.search(page).group(1), "patient": "nobody", "app": ehr["app"].key},
    )
    assert nobody.status_code == 404
    assert ehr["admin"].get("/ehr").status_code == 403
    assert make.as_role("patient", "general", "p1").get("/ehr").status_code == 403
