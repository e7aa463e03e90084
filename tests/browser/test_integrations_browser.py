"""A developer switches an EHR integration on and off in the portal, clicking as a person would,
against a second fhirgate process as the upstream EHR; the application then reads, searches,
pages and writes through this server with the headers and with a token."""

from __future__ import annotations

import re

from tests.browser.conftest import check_page, log_in
from tests.integrations.test_ehr_integration_e2e import (
    HOSPITAL,
    _connect,
    _seed_bundle,
    _through_headers_and_a_token,
)
from tests.integrations.upstream_ehr import upstream_ehr


def test_a_developer_switches_an_ehr_on_and_off_in_the_portal(page, app, make, tmp_path):
    make.hospital("sandbox", "Sandbox")
    make.hospital("general", "General Hospital")
    with upstream_ehr(tmp_path) as ehr:
        ehr.load(ehr.api_key(["system/*.cruds"]), _seed_bundle())
        key = ehr.api_key(["system/Patient.cruds", "system/Observation.cruds"])
        _connect(make, ehr)
        email = make.user("developer")
        application = make.application(make.login(email))

        log_in(page, email)
        page.goto(f"/developer/apps/{application.key}")
        page.get_by_role("link", name="Integrations").click()
        page.get_by_role("heading", name="Integrations").wait_for()
        check_page(page, "developer-integrations")
        page.get_by_role("switch", name=re.compile(r"North.*Switch on")).click()
        page.get_by_role("heading", name="North (upstream EHR)").wait_for()
        check_page(page, "developer-integration")

        page.get_by_label("Client id at the EHR").fill(key["key"])
        page.get_by_label("Client secret at the EHR").fill(key["secret"])
        page.get_by_label("This application's client secret").fill("apps_not-the-secret")
        page.get_by_role("button", name="Switch on").click()
        page.get_by_role("alert").filter(has_text="is not this application's current secret").wait_for()
        assert key["secret"] not in page.content()

        page.get_by_label("Client id at the EHR").fill(key["key"])
        page.get_by_label("Client secret at the EHR").fill(key["secret"])
        page.get_by_label("This application's client secret").fill(application.secret)
        page.get_by_role("button", name="Switch on").click()
        page.get_by_role("status").filter(has_text="Integration switched on").wait_for()
        assert key["secret"] not in page.content() and application.secret not in page.content()

        _through_headers_and_a_token(app, app.test_client(), application)

        page.get_by_role("link", name="← Integrations").click()
        page.get_by_role("switch", name=re.compile(r"North.*Switch off")).click()
        page.get_by_role("status").filter(has_text="switched off").wait_for()
        headers = {"X-Client-Id": application.key, "X-Client-Secret": application.secret}
        assert app.test_client().get(f"/fhir/{HOSPITAL}/Patient/p1", headers=headers).status_code == 403
