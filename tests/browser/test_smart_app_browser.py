"""A SMART app written by others — the SMART JavaScript client ``fhirclient`` from npm — in a small
static page on its own origin, against fhirgate started as ``make run`` starts it: a standalone
patient launch in headless Chromium. The patient logs in, unticks one permission and approves;
the app reads its Patient, is refused the unticked type, searches Observations and refreshes its
token; the patient revokes it in the portal; its next request and next refresh fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.extensions import db
from fhir.storage.sql import SqlRepository
from tests.browser.conftest import NARROW, npm_file
from tests.conftest import PASSWORD
from tests.servers import make_run_server, threaded_server

FHIRCLIENT_VERSION = "2.6.3"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"

APP_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Steps</title>
<script src="fhir-client.js"></script></head><body><main><h1>Steps</h1><pre id="out"></pre></main>
<script>
window.steps = {};
async function step(name, work) {
  try { window.steps[name] = {ok: true, value: await work()}; }
  catch (error) {
    window.steps[name] = {ok: false, status: error.status || null, message: String(error.message)};
  }
}
FHIR.oauth2.ready().then(async (client) => {
  window.smart = client;
  await step("patient", async () => (await client.patient.read()).id);
  await step("fhirUser", async () => client.getIdToken().fhirUser);
  await step("scope", async () => client.state.tokenResponse.scope);
  const mine = "?patient=" + client.patient.id;
  await step("conditions", async () => (await client.request("Condition" + mine)).total);
  await step("observations", async () => (await client.request("Observation" + mine)).entry.length);
  await step("refresh", async () => {
    const before = client.state.tokenResponse.access_token;
    await client.refresh();
    return client.state.tokenResponse.access_token !== before;
  });
  await step("afterRefresh", async () => (await client.patient.read()).id);
  window.done = true;
  document.getElementById("out").textContent = JSON.stringify(window.steps, null, 1);
}).catch((error) => { window.failed = String(error); window.done = true; });
</script></body></html>"""

LAUNCH_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Launch</title>
<script src="fhir-client.js"></script></head><body><script>
FHIR.oauth2.authorize(%s);
</script></body></html>"""


def static_site(files: dict[str, tuple[bytes, str]]):
    """A WSGI app serving ``files`` (path → body, type): the app's own origin."""

    def serve(environ, start_response):
        found = files.get(environ["PATH_INFO"])
        if found is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        body, kind = found
        start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]

    return serve


@pytest.fixture
def patient_data(app, make):
    make.hospital("general", "General Hospital")
    make.patient("general", "p1", "Doe")
    email = make.user("patient", "general", "p1")
    with app.app_context():
        store = SqlRepository(db.session, "general")
        for number in range(3):
            store.create(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "55423-8"}]},
                    "subject": {"reference": "Patient/p1"},
                    "valueQuantity": {"value": 1000 + number},
                },
            )
        store.create(
            {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}, "code": {"text": "Asthma"}},
        )
        db.session.commit()
    return email


def test_fhirclient_standalone_launch_unticked_scope_refresh_and_revocation(
    app, make, patient_data, chromium, tmp_path: Path
):
    library = npm_file("fhirclient", FHIRCLIENT_VERSION, "package/build/fhir-client.js").read_bytes()
    developer = make.as_role("developer")
    with make_run_server(app, tmp_path / "server.log") as fhirgate:
        files: dict[str, tuple[bytes, str]] = {"/fhir-client.js": (library, "text/javascript")}
        with threaded_server(static_site(files)) as site:
            registered = developer.post(
                "/api/apps",
                json={
                    "client_name": "Steps",
                    "publisher": "Example Health",
                    "token_endpoint_auth_method": "none",
                    "redirect_uris": [f"{site}/app.html"],
                },
            ).get_json()
            options = {
                "clientId": registered["client_id"],
                "scope": SCOPE,
                "redirectUri": "app.html",
                "iss": f"{fhirgate.url}/fhir/general",
                "pkceMode": "required",
            }
            files["/launch.html"] = (LAUNCH_PAGE % json.dumps(options)).encode(), "text/html"
            files["/app.html"] = APP_PAGE.encode(), "text/html"

            context = chromium.new_context(viewport=NARROW)
            app_page = context.new_page()
            app_page.set_default_timeout(20_000)
            app_page.goto(f"{site}/launch.html")
            app_page.wait_for_url(f"{fhirgate.url}/login**")
            app_page.get_by_label("E-mail").fill(patient_data)
            app_page.get_by_label("Password").fill(PASSWORD)
            app_page.get_by_role("button", name="Log in").click()
            app_page.wait_for_url(f"{fhirgate.url}/oauth/authorize**")
            assert app_page.get_by_role("heading", name="Allow Steps to see your health record?").is_visible()
            app_page.get_by_label("Read your conditions and diagnoses").uncheck()
            app_page.get_by_label("30 days").check()
            app_page.get_by_role("button", name="Allow").click()
            app_page.wait_for_function("window.done === true")
            assert app_page.evaluate("window.failed || null") is None
            steps = app_page.evaluate("window.steps")

            assert steps["patient"] == {"ok": True, "value": "p1"}, steps
            assert steps["fhirUser"]["value"] == f"{fhirgate.url}/fhir/general/Patient/p1"
            assert "patient/Condition.rs" not in steps["scope"]["value"].split()
            assert steps["conditions"]["ok"] is False and steps["conditions"]["status"] == 403, steps
            assert steps["observations"] == {"ok": True, "value": 3}, steps
            assert steps["refresh"] == {"ok": True, "value": True}, steps
            assert steps["afterRefresh"] == {"ok": True, "value": "p1"}, steps

            # The patient revokes the app in the portal (same browser, another tab).
            portal = context.new_page()
            portal.goto(f"{fhirgate.url}/portal/apps")
            assert portal.get_by_role("link", name="Steps").is_visible()
            portal.get_by_role("button", name="Revoke Steps").click()
            portal.wait_for_url("**/portal/apps?notice=revoked")

            after = app_page.evaluate(
                """async () => {
                    const out = {};
                    const token = window.smart.state.tokenResponse.access_token;
                    try { await window.smart.refresh(); out.refresh = "ok"; }
                    catch (error) { out.refresh = error.status || String(error.message); }
                    // The access token it held before, sent as is (fhirclient would try to refresh).
                    const read = await fetch(window.smart.state.serverUrl + "/Patient/p1",
                                             {headers: {Authorization: "Bearer " + token}});
                    out.read = read.status;
                    return out;
                }"""
            )
            assert after["read"] == 401, after
            # fhirclient reports a failed refresh as an Error with the response's status in words
            assert after["refresh"] == 400 or "400" in str(after["refresh"]), after
            context.close()
