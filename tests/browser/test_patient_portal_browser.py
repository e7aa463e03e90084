"""A patient, clicking as a person would: credentials for an app, used, then deleted."""

from __future__ import annotations

import requests
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import check_page
from tests.conftest import PASSWORD


def settled_content(page) -> str:
    """The page's HTML once a history navigation (possibly to an error page) has finished."""
    for _ in range(50):
        try:
            page.wait_for_load_state()
            return page.content()
        except PlaywrightError:
            page.wait_for_timeout(100)
    raise AssertionError("the page never settled")


def test_a_patient_gives_an_app_credentials_and_takes_them_back(page, live_url, make):
    make.hospital("general")
    make.patient("general", "p1", family="Müller")
    email = make.user("patient", "general", "p1")

    page.goto("/login")
    check_page(page, "login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="My History").wait_for()
    assert page.get_by_role("heading", name="FHIR API Access").is_visible()

    page.get_by_role("link", name="Generate New Credentials").click()
    check_page(page, "portal-new-credentials")
    page.get_by_label("What are these credentials for?").fill("Health App")
    page.get_by_role("button", name="Generate").click()
    page.get_by_role("heading", name="Your new credentials").wait_for()
    assert "cannot be shown again" in page.content()

    page.get_by_role("button", name="Copy key").click()
    key = page.evaluate("navigator.clipboard.readText()")
    page.get_by_role("button", name="Copy secret").click()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert key.startswith("pk_") and secret.startswith("pks_")
    check_page(page, "portal-credentials-created")

    token = requests.post(
        f"{live_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(key, secret), timeout=10
    ).json()["access_token"]
    read = requests.get(
        f"{live_url}/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert read.status_code == 200 and read.json()["id"] == "p1"

    # the one-time page again: reload, and back after leaving it, never shows the secret
    page.reload()  # the browser sends the form again: the server answers "already created"
    assert page.get_by_role("heading", name="These credentials were already created").is_visible()
    assert secret not in page.content()
    page.get_by_role("link", name="Back to My History").click()
    page.get_by_role("heading", name="My History").wait_for()
    for _ in range(2):  # back to each POST result: not stored (no-store), so never shown from history
        try:
            page.go_back()
        except PlaywrightError as error:
            assert "ERR_CACHE_MISS" in str(error)
        assert secret not in settled_content(page)

    page.goto("/portal")
    check_page(page, "portal-my-history")
    page.get_by_role("link", name="Health App", exact=True).click()
    page.get_by_role("heading", name="Access history").wait_for()
    check_page(page, "portal-credential-history")

    page.goto("/portal")
    page.get_by_role("link", name="Delete Health App").click()
    check_page(page, "portal-delete-confirm")
    page.get_by_role("button", name="Delete").click()
    notice = page.get_by_role("status")
    assert "were deleted" in notice.inner_text()
    assert key not in page.content()

    refused = requests.get(
        f"{live_url}/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert refused.status_code == 401
