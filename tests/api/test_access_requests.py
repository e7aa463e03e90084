"""Applications ask hospitals for access; admins see the requests and grant or decline them."""

from __future__ import annotations

import pytest

from tests.conftest import BASE_URL, count_rows, token_request


@pytest.fixture
def setup(make, sandbox):
    make.hospital("general")
    make.hospital("clinic")
    developer = make.as_role("developer")
    application = make.application(developer)
    admin = make.as_role("hospital-admin", "general")
    return developer, application, admin


def ask(developer, client_id: str, **body):
    return developer.post(
        f"/api/apps/{client_id}/access-requests",
        json={"hospital": "general", "permissions": ["system/Patient.rs"], **body},
    )


def test_a_request_reaches_the_hospital_and_a_grant_answers_it(client, setup):
    developer, application, admin = setup
    created = ask(developer, application.key, message="Nightly export of appointments")
    assert created.status_code == 201
    assert created.get_json()["permissions"] == ["system/Patient.rs"]
    waiting = admin.get("/api/hospitals/general/access-requests").get_json()
    assert [(r["client_id"], r["message"]) for r in waiting] == [
        (application.key, "Nightly export of appointments")
    ]
    assert (
        developer.get(f"/api/apps/{application.key}/access-requests").get_json()[0]["hospital"] == "general"
    )
    # Asking is not having: no token for the hospital until an admin grants.
    resource = f"{BASE_URL}/fhir/general"
    assert token_request(client, application, resource=resource).get_json()["error"] == "invalid_target"
    granted = admin.put(
        f"/api/hospitals/general/apps/{application.key}", json={"permissions": ["system/Patient.rs"]}
    )
    assert granted.status_code == 201
    assert admin.get("/api/hospitals/general/access-requests").get_json() == []
    assert token_request(client, application, resource=resource).status_code == 200


def test_a_declined_request_disappears(setup):
    developer, application, admin = setup
    ask(developer, application.key)
    assert admin.delete(f"/api/hospitals/general/access-requests/{application.key}").status_code == 204
    assert admin.get("/api/hospitals/general/access-requests").get_json() == []
    assert admin.delete(f"/api/hospitals/general/access-requests/{application.key}").status_code == 404
    assert admin.delete("/api/hospitals/general/access-requests/app%00x").status_code == 400


def test_another_hospitals_admin_sees_nothing_and_cannot_decline(make, setup):
    developer, application, _ = setup
    ask(developer, application.key)
    other = make.as_role("hospital-admin", "clinic")
    assert other.get("/api/hospitals/clinic/access-requests").get_json() == []
    assert other.get("/api/hospitals/general/access-requests").status_code == 403
    assert other.delete(f"/api/hospitals/general/access-requests/{application.key}").status_code == 403


def test_only_the_owner_asks_for_its_application(make, setup):
    _, application, _ = setup
    stranger = make.as_role("developer")
    assert ask(stranger, application.key).status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"hospital": "sandbox"}, 400),
        ({"hospital": "nowhere"}, 404),
        ({"hospital": "Not An Id"}, 400),
        ({"hospital": 7}, 400),
        ({"permissions": ["patient/*.rs"]}, 400),
        ({"permissions": []}, 400),
        ({"message": "x" * 501}, 400),
    ],
)
def test_bad_requests_are_refused(setup, body, status):
    developer, application, _ = setup
    response = ask(developer, application.key, **body)
    assert response.status_code == status and response.get_json()["error"]


def test_a_deleted_application_s_request_is_gone(app, setup):
    developer, application, admin = setup
    ask(developer, application.key)
    developer.delete(f"/api/apps/{application.key}")
    assert admin.get("/api/hospitals/general/access-requests").get_json() == []
    with app.app_context():
        assert count_rows("app_access_requests") == 0
