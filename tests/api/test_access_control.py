"""Management API authorization: 401 without login, 403 wrong role or hospital, 404 unknown."""

from __future__ import annotations

import pytest


@pytest.fixture
def hospitals(make):
    make.hospital("general")
    make.hospital("other")


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/api/hospitals/general/api-keys"),
        ("post", "/api/hospitals/general/api-keys"),
        ("get", "/api/me/credentials"),
        ("post", "/api/apps"),
        ("get", "/api/apps"),
        ("put", "/api/hospitals/general/apps/app_x"),
        ("post", "/api/hospitals/general/patients/p1/portal-access"),
    ],
)
def test_not_logged_in_is_401(client, hospitals, method, path):
    response = getattr(client, method)(path, json={})
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthenticated"


def test_hospital_admin_cannot_touch_another_hospital(make, hospitals):
    admin = make.as_role("hospital-admin", "general")
    other_key = make.api_key("other")
    assert admin.get("/api/hospitals/other/api-keys").status_code == 403
    assert admin.delete(f"/api/hospitals/other/api-keys/{other_key.key}").status_code == 403
    created = admin.post(
        "/api/hospitals/other/api-keys", json={"name": "x", "permissions": ["system/Patient.rs"]}
    )
    assert created.status_code == 403
    assert admin.post("/api/hospitals/other/patients/p1/portal-access", json={}).status_code == 403


def test_another_hospitals_key_is_not_found_through_ones_own_hospital(make, hospitals):
    admin = make.as_role("hospital-admin", "general")
    other_key = make.api_key("other")
    assert admin.delete(f"/api/hospitals/general/api-keys/{other_key.key}").status_code == 404


def test_wrong_roles_are_403(make, hospitals):
    patient = make.as_role("patient", "general", "p1")
    developer = make.as_role("developer")
    admin = make.as_role("hospital-admin", "general")
    assert patient.get("/api/hospitals/general/api-keys").status_code == 403
    assert patient.post("/api/apps", json={"name": "x"}).status_code == 403
    assert developer.get("/api/me/credentials").status_code == 403
    assert developer.get("/api/hospitals/general/api-keys").status_code == 403
    assert admin.post("/api/me/credentials", json={"name": "x"}).status_code == 403


def test_superadmin_administers_every_hospital(make, hospitals):
    root = make.as_role("superadmin")
    assert root.get("/api/hospitals/other/api-keys").status_code == 200
    assert root.get("/api/hospitals/nowhere/api-keys").status_code == 404


def test_patient_cannot_delete_another_patients_credential(make, hospitals):
    victim = make.patient_credential("general", patient="p1")
    attacker = make.as_role("patient", "general", "p2")
    assert attacker.delete(f"/api/me/credentials/{victim.key}").status_code == 404
    assert attacker.get("/api/me/credentials").get_json() == []


def test_developer_cannot_see_or_change_another_developers_app(make, sandbox):
    victim = make.application()
    attacker = make.as_role("developer")
    assert attacker.get("/api/apps").get_json() == []
    assert attacker.get(f"/api/apps/{victim.key}").status_code == 404
    assert attacker.post(f"/api/apps/{victim.key}/secret").status_code == 404
    assert attacker.delete(f"/api/apps/{victim.key}").status_code == 404
    assert attacker.get(f"/api/apps/{victim.key}/hospitals").status_code == 404


def test_unknown_routes_and_methods_answer_json(client):
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and set(missing.get_json()) == {"error", "message"}
    wrong_method = client.patch("/api/session")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"] == "method_not_allowed"


def test_form_posts_are_refused(make, hospitals):
    admin = make.as_role("hospital-admin", "general")
    response = admin.post(
        "/api/hospitals/general/api-keys", data={"name": "x", "permissions": "system/Patient.rs"}
    )
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"


def test_oversized_management_body_is_413(make, hospitals, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    admin = make.as_role("hospital-admin", "general")
    response = admin.post("/api/hospitals/general/api-keys", json={"name": "x" * 5000, "permissions": []})
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


@pytest.mark.parametrize(
    "body",
    [
        '{"email": "x\\ud800@a.org", "password": "pw"}',
        '{"email": "a\\u0000@b.co", "password": "pw"}',
        '{"email": "a@b.co", "password": "p\\u0000w"}',
        "[" * 100_000 + "]" * 100_000,
        b'{"email": "\xff\xfe", "password": "x"}',
    ],
)
def test_hostile_login_bodies_are_400_not_500(client, body):
    response = client.post("/api/session", data=body, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)


def test_hostile_names_and_ids_are_400_or_404_not_500(make, hospitals):
    developer = make.as_role("developer")
    assert developer.post("/api/apps", json={"name": "a\u0000b"}).status_code == 400
    assert developer.post("/api/apps", json={"name": "a\ud800b"}).status_code == 400
    assert developer.get("/api/apps/%00").status_code == 400
    assert developer.delete("/api/apps/" + "x" * 500).status_code == 404
    root = make.as_role("superadmin")
    assert root.get("/api/hospitals/%00/api-keys").status_code == 400
    patient = make.as_role("patient", "general", "p1")
    assert patient.delete("/api/me/credentials/%00").status_code == 400


def test_non_json_bodies_are_refused_on_every_route(make, sandbox):
    developer = make.as_role("developer")
    cred = make.application(developer)
    response = developer.post(f"/api/apps/{cred.key}/secret", data="x=1", content_type="text/plain")
    assert response.status_code == 415
