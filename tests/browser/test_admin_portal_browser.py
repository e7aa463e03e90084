"""A hospital admin, clicking as a person would: an API key limited to reading two types."""

from __future__ import annotations

import requests

from tests.browser.conftest import check_page, log_in


def test_an_admin_creates_a_read_only_key_for_patients_and_observations(page, live_url, make):
    make.hospital("general")
    make.patient("general", "p1")
    email = make.user("hospital-admin", "general")
    application = make.application()  # an application waiting for an answer, on the home page
    make.login(make.user("superadmin")).post(
        f"/api/apps/{application.key}/access-requests",
        json={"hospital": "general", "permissions": ["system/Appointment.rs"], "message": "Reminders"},
    )

    log_in(page, email)
    page.get_by_role("heading", name="API keys").wait_for()
    page.get_by_role("heading", name="Asking for access").wait_for()
    check_page(page, "admin-home")

    page.get_by_role("link", name="Create API Key").click()
    check_page(page, "admin-new-api-key")
    page.get_by_label("Name").fill("Lab integration")
    for box in ("read Patient", "search Patient", "read Observation", "search Observation"):
        page.get_by_label(box, exact=True).check()
    page.get_by_role("button", name="Create API Key").click()
    page.get_by_role("heading", name="API key “Lab integration”").wait_for()
    assert "system/Patient.rs" in page.content() and "system/Observation.rs" in page.content()
    page.get_by_role("button", name="Copy token").click()
    token = page.evaluate("navigator.clipboard.readText()")
    check_page(page, "admin-api-key-created")

    auth = {"Authorization": f"Bearer {token}"}
    read = requests.get(f"{live_url}/fhir/general/Patient/p1", headers=auth, timeout=10)
    assert read.status_code == 200
    create = requests.post(
        f"{live_url}/fhir/general/Patient",
        json={"resourceType": "Patient"},
        headers={**auth, "Content-Type": "application/fhir+json"},
        timeout=10,
    )
    assert create.status_code == 403

    page.get_by_role("link", name="Done").click()
    page.get_by_role("link", name="Revoke Lab integration").click()
    check_page(page, "admin-revoke-confirm")
    page.get_by_role("button", name="Revoke").click()
    assert "was revoked" in page.get_by_role("status").inner_text()
    assert requests.get(f"{live_url}/fhir/general/Patient/p1", headers=auth, timeout=10).status_code == 401
