"""A hospital's oversight of patient access: its admins list every patient key pair, app
approval and portal login at their hospital, revoke any of them, and disable a portal login;
nobody else can."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, token_request
from tests.oauth.smart_launch import CSRF, Launch, smart_app


@pytest.fixture
def setting(make):
    make.hospital("general", "General Hospital")
    make.hospital("north", "North")
    make.patient("general", "p1", "Doe")
    email = make.user("patient", "general", "p1")
    patient = make.login(email)
    app = smart_app(make)
    launch = Launch(app.key, app.secret)
    issued = launch.exchange(make.app.test_client(), launch.code(patient)).get_json()
    credential = patient.post("/api/me/credentials", json={"name": "Diary"}).get_json()
    return {"email": email, "patient": patient, "launch": launch, "issued": issued, "credential": credential}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_sees_and_revokes_an_app_approval(make, client, setting):
    admin = make.as_role("hospital-admin", "general")
    listed = admin.get("/api/hospitals/general/patient-access").get_json()
    (approval,) = listed["authorizations"]
    assert approval["app"] == "Steps" and approval["patient"] == "p1" and approval["status"] == "active"
    assert "refresh" not in str(approval) and "code" not in approval
    assert [c["patient"] for c in listed["credentials"]] == ["p1"]
    assert listed["logins"] == [{"email": setting["email"], "patient": "p1", "disabled": False}]

    token = setting["issued"]["access_token"]
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 200
    assert admin.delete(f"/api/hospitals/general/authorizations/{approval['id']}").status_code == 204
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 401
    refused = setting["launch"].refresh(client, setting["issued"]["refresh_token"])
    assert refused.get_json()["error"] == "invalid_grant"
    after = admin.get("/api/hospitals/general/patient-access").get_json()["authorizations"][0]
    assert after["status"] == "revoked" and after["revoked_reason"] == "revoked by the hospital"
    assert "revoked" in setting["patient"].get("/portal/apps").get_data(as_text=True)


def test_an_admin_revokes_a_patient_key_pair(make, client, setting):
    admin = make.as_role("hospital-admin", "general")
    credential = setting["credential"]

    class Cred:
        key, secret = credential["key"], credential["secret"]

    token = token_request(client, Cred).get_json()["access_token"]
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 200
    assert admin.delete(f"/api/hospitals/general/patient-credentials/{credential['key']}").status_code == 204
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 401
    assert admin.delete(f"/api/hospitals/general/patient-credentials/{credential['key']}").status_code == 404


def test_disabling_a_portal_login_ends_its_sessions_and_refuses_logins(make, client, setting):
    admin = make.as_role("hospital-admin", "general")
    patient = setting["patient"]
    assert patient.get("/api/session").status_code == 200
    second_login = admin.post(
        "/api/hospitals/general/patients/p1/portal-access",
        json={"email": "p1-too@example.org", "password": "z" * 12},
    )
    assert second_login.status_code == 201
    token = setting["issued"]["access_token"]
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 200
    disabled = admin.patch("/api/hospitals/general/patients/p1/portal-access", json={"disabled": True})
    assert disabled.status_code == 200 and disabled.get_json()["disabled"] is True
    assert patient.get("/api/session").status_code == 401
    # every login of the patient, and the apps they approved with it
    assert (
        client.post("/api/session", json={"email": "p1-too@example.org", "password": "z" * 12}).status_code
        == 401
    )
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 401
    login = client.post("/api/session", json={"email": setting["email"], "password": PASSWORD})
    assert login.status_code == 401
    # nor can anyone approve an app as that patient any more
    assert patient.get(setting["launch"].authorize_url()).headers["Location"].startswith("/login")
    enabled = admin.patch("/api/hospitals/general/patients/p1/portal-access", json={"disabled": False})
    assert enabled.get_json()["disabled"] is False
    assert (
        client.post("/api/session", json={"email": setting["email"], "password": PASSWORD}).status_code == 200
    )


def test_nobody_else_oversees_the_hospital(make, client, setting):
    approval_id = (
        make.as_role("hospital-admin", "general")
        .get("/api/hospitals/general/patient-access")
        .get_json()["authorizations"][0]["id"]
    )
    northern = make.as_role("hospital-admin", "north")
    assert northern.get("/api/hospitals/general/patient-access").status_code == 403
    assert northern.delete(f"/api/hospitals/general/authorizations/{approval_id}").status_code == 403
    assert northern.delete(f"/api/hospitals/north/authorizations/{approval_id}").status_code == 404
    assert (
        northern.patch("/api/hospitals/north/patients/p1/portal-access", json={"disabled": True}).status_code
        == 404
    )
    assert setting["patient"].get("/api/hospitals/general/patient-access").status_code == 403
    assert client.get("/api/hospitals/general/patient-access").status_code == 401
    token = setting["issued"]["access_token"]
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 200


def test_the_admin_portal_page_revokes_and_disables(make, client, setting):
    admin = make.as_role("hospital-admin", "general")  # the same session cookie as the portal's
    page = admin.get("/admin/general/patient-access").get_data(as_text=True)
    assert "Apps patients approved" in page and "Steps" in page and "Diary" in page
    csrf = CSRF.search(page).group(1)
    approval_id = page.split("/admin/general/authorizations/")[1].split("/")[0]
    revoked = admin.post(f"/admin/general/authorizations/{approval_id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    token = setting["issued"]["access_token"]
    assert client.get("/fhir/general/Patient/p1", headers=bearer(token)).status_code == 401
    assert (
        admin.post("/admin/general/patients/p1/login", data={"csrf_token": csrf, "disabled": "1"}).status_code
        == 303
    )
    assert setting["patient"].get("/api/session").status_code == 401
    forged = admin.post("/admin/general/patients/p1/login", data={"disabled": "0"})
    assert forged.status_code == 400
