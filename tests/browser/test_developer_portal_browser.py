"""A developer, clicking as a person would: an application with a generated secret reads the sandbox."""

from __future__ import annotations

import json
import re

import requests

from tests.browser.conftest import check_page, log_in
from tests.oauth.signing import ClientKey, assertion_form


def test_a_developer_adds_an_application_and_reads_the_sandbox(page, live_url, make):
    make.hospital("sandbox")
    make.patient("sandbox", "sb-p1")
    email = make.user("developer")

    log_in(page, email)
    page.get_by_role("heading", name="Applications").wait_for()
    check_page(page, "developer-home")

    page.get_by_role("link", name="Add new application").click()
    page.get_by_label("Name").fill("Scheduler")
    page.get_by_role("button", name="Generate").click()
    generated = page.get_by_label("Client secret").input_value()
    assert len(generated) >= 32
    check_page(page, "developer-new-application")
    page.get_by_role("button", name="Add application").click()
    page.get_by_role("heading", name="Application “Scheduler” added").wait_for()
    page.get_by_role("button", name="Copy client id").click()
    client_id = page.evaluate("navigator.clipboard.readText()")
    page.get_by_role("button", name="Copy secret").click()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert secret == generated
    check_page(page, "developer-secret")

    page.reload()  # the form again: no second application, no secret
    assert secret not in page.content()

    page.goto("/developer")
    page.get_by_role("link", name="Scheduler").click()
    page.get_by_role("heading", name="Hospitals it can reach").wait_for()
    assert "test data" in page.content()
    check_page(page, "developer-application")
    shown_base = re.search(r"<code>(http[^<]*/fhir/sandbox)</code>", page.content()).group(1)

    # the example request as the page shows it, with the secret in place of YOUR_SECRET
    token = requests.post(
        f"{live_url}/oauth/token",
        data={"grant_type": "client_credentials", "resource": shown_base},
        auth=(client_id, secret),
        timeout=10,
    ).json()["access_token"]
    read = requests.get(
        f"{live_url}/fhir/sandbox/Patient/sb-p1", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert read.status_code == 200 and read.json()["id"] == "sb-p1"


def test_a_developer_registers_public_keys_and_reads_the_sandbox_with_an_assertion(page, live_url, make):
    make.hospital("sandbox")
    make.patient("sandbox", "sb-p2")
    email = make.user("developer")
    signer = ClientKey("ES384")

    log_in(page, email)
    page.get_by_role("link", name="Add new application").click()
    page.get_by_label("Name").fill("Nightly export")
    page.get_by_label("JWK Set (public keys, JSON)").fill(json.dumps(signer.jwks()))
    page.get_by_role("button", name="Add application").click()
    page.get_by_role("heading", name="Public keys", exact=True).wait_for()
    assert "no secret was made" in page.content()
    client_id = re.search(r'<code class="key">(app_[^<]+)</code>', page.content()).group(1)

    token = requests.post(
        f"{live_url}/oauth/token", data=assertion_form(signer.assertion(client_id)), timeout=10
    ).json()["access_token"]
    read = requests.get(
        f"{live_url}/fhir/sandbox/Patient/sb-p2", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert read.status_code == 200

    # a refused assertion: the caller learns which check failed, the page tells the developer
    requests.post(
        f"{live_url}/oauth/token", data=assertion_form(signer.assertion(client_id, exp=1)), timeout=10
    )
    page.reload()
    page.get_by_role("heading", name="Last refused assertion").wait_for()
    assert "it has expired" in page.content()
    check_page(page, "developer-application-public-keys")
