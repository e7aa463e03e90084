"""The SMART App Launch's pages in a browser, as people use them: the consent page (a patient
unticks a permission, chooses an expiry and allows), Connected apps (the approval listed, then
revoked), the hospital's Patient access page and the clinicians' EHR page. Each is checked at
360 px and with axe-core, and photographed for the README."""

from __future__ import annotations

from tests.browser.conftest import check_page, log_in
from tests.oauth.smart_launch import Launch, query_of, smart_app


def test_consent_connected_apps_and_oversight(page, make, client):
    make.hospital("general", "General Hospital")
    make.patient("general", "p1", "Doe")
    patient_email = make.user("patient", "general", "p1")
    registered = smart_app(make, client_uri="https://app.example", launch_uri="https://app.example/launch")
    launch = Launch(
        registered.key,
        registered.secret,
        scope="launch/patient openid fhirUser offline_access patient/*.rs user/*.rs",
    )

    # The app's redirect URI answers in the browser without leaving this machine.
    arrived = []

    def app_site(route):
        arrived.append(route.request.url)
        route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>Steps</title><p>Back in the app"
        )

    page.route("https://app.example/**", app_site)
    log_in(page, patient_email)
    page.goto(launch.authorize_url())
    page.get_by_role("heading", name="Allow Steps to see your health record?").wait_for()
    check_page(page, "authorize-consent")
    page.get_by_label("Read your conditions and diagnoses").uncheck()
    page.get_by_label("30 days").check()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url("https://app.example/callback?**")
    sent = query_of(arrived[-1])
    assert sent["state"] == launch.state and sent["code"]
    body = launch.exchange(client, sent["code"]).get_json()
    assert "patient/Condition.rs" not in body["scope"].split() and "user/*.rs" not in body["scope"]

    page.goto("/portal/apps")
    page.get_by_role("heading", name="Connected apps").wait_for()
    assert page.get_by_role("link", name="Steps").is_visible()
    check_page(page, "portal-connected-apps")

    base = page.url.split("/portal")[0]
    admin_page = page.context.browser.new_context(base_url=base, bypass_csp=True).new_page()
    admin_page.set_default_timeout(15_000)
    log_in(admin_page, make.user("hospital-admin", "general"))
    admin_page.goto("/admin/general")
    admin_page.get_by_role("link", name="Patient access").click()
    admin_page.get_by_role("heading", name="Apps patients approved").wait_for()
    check_page(admin_page, "admin-patient-access")
    admin_page.get_by_role("button", name="Revoke Steps for Patient/p1").click()
    admin_page.get_by_text("The app's access was revoked").wait_for()
    assert (
        client.get(
            "/fhir/general/Patient/p1", headers={"Authorization": "Bearer " + body["access_token"]}
        ).status_code
        == 401
    )

    page.goto("/portal/apps")
    assert "revoked" in page.content()
    admin_page.context.close()


def test_the_clinicians_page_launches_an_app(page, make):
    make.hospital("general", "General Hospital")
    make.patient("general", "p1", "Doe")
    admin = make.as_role("hospital-admin", "general")
    registered = smart_app(make, launch_uri="https://app.example/launch")
    admin.put(f"/api/hospitals/general/apps/{registered.key}", json={"permissions": ["system/Patient.rs"]})
    admin.post("/api/hospitals/general/clinicians", json={"email": "dr@example.org", "password": "x" * 12})
    launched = []
    page.route(
        "https://app.example/**",
        lambda route: (launched.append(route.request.url), route.fulfill(body="ok"))[1],
    )
    from tests.conftest import PASSWORD  # noqa: F401 - the clinician has its own password

    page.goto("/login")
    page.get_by_label("E-mail").fill("dr@example.org")
    page.get_by_label("Password").fill("x" * 12)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Patients").wait_for()
    check_page(page, "ehr-patients")
    # The launch as a browser enforcing the page's own CSP does it (check_page's context
    # bypasses CSP to inject axe-core): form-action must let the redirect to the app through.
    strict = page.context.browser.new_context(base_url=page.url.split("/ehr")[0])
    ehr = strict.new_page()
    ehr.set_default_timeout(15_000)
    ehr.route(
        "https://app.example/**",
        lambda route: (launched.append(route.request.url), route.fulfill(body="ok"))[1],
    )
    blocked = []
    ehr.on(
        "console",
        lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None,
    )
    ehr.goto("/login")
    ehr.get_by_label("E-mail").fill("dr@example.org")
    ehr.get_by_label("Password").fill("x" * 12)
    ehr.get_by_role("button", name="Log in").click()
    ehr.get_by_role("button", name="Launch for Doe").click()
    ehr.wait_for_url("https://app.example/launch?**")
    assert not blocked, blocked
    strict.close()
    sent = query_of(launched[-1])
    assert sent["iss"].endswith("/fhir/general") and sent["launch"].startswith("ln_")
