"""The developer portal's Integrations, through its forms: an application with public keys sets
its integration passphrase and switches an EHR on with it; the test credentials switch; a wrong
secret or passphrase is said on the page and stores nothing."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.integrations.models import IntegrationCredential
from tests.oauth.signing import ClientKey
from tests.web.conftest import hidden

PASSPHRASE = "a passphrase of the developer's"


@pytest.fixture
def north(make):
    make.hospital("north", "North")
    operator = make.as_role("superadmin")
    body = {
        "base_url": "http://127.0.0.1:9/fhir",
        "auth_kind": "api_key",
        "scope": ["system/*.rs"],
        "test_credentials": {"api_key": "operator-test-key"},
    }
    assert operator.put("/api/hospitals/north/upstream", json=body).status_code == 200
    return "north"


def _post(client, page_path: str, action: str, **fields):
    page = client.get(page_path)
    assert page.status_code == 200
    return client.post(action, data={"csrf_token": hidden(page.data, "csrf_token"), **fields})


def test_an_application_with_keys_sets_a_passphrase_and_switches_on_with_it(app, make, browser_login, north):
    email = make.user("developer")
    application = make.application(make.login(email), jwks=ClientKey().jwks())
    portal = browser_login(email)
    base = f"/developer/apps/{application.key}/integrations"
    page = portal.get(base)
    assert b"Integration passphrase" in page.data and b"North" in page.data
    short = _post(
        portal, base, f"/developer/apps/{application.key}/integration-passphrase", passphrase="short"
    )
    assert short.status_code == 400 and b"16 to 512" in short.data
    saved = _post(
        portal, base, f"/developer/apps/{application.key}/integration-passphrase", passphrase=PASSPHRASE
    )
    assert saved.status_code == 303

    view = f"{base}/{north}"
    assert b"integration passphrase" in portal.get(view).data
    fields = {"credential_api_key": "developer-ehr-key", "permission": "system/*.rs"}
    wrong = _post(portal, view, view, integration_passphrase="not the passphrase at all", **fields)
    assert wrong.status_code == 403 and b"is not this application" in wrong.data
    with app.app_context():
        assert db.session.get(IntegrationCredential, (application.key, north)) is None
    on = _post(portal, view, view, integration_passphrase=PASSPHRASE, **fields)
    assert on.status_code == 303
    with app.app_context():
        row = db.session.get(IntegrationCredential, (application.key, north))
        assert row.mode == "own" and b"developer-ehr-key" not in row.sealed


def test_the_test_credentials_switch_needs_no_secret(app, make, browser_login, north):
    email = make.user("developer")
    application = make.application(make.login(email))
    portal = browser_login(email)
    view = f"/developer/apps/{application.key}/integrations/{north}"
    assert b"Use the platform" in portal.get(view).data
    on = _post(portal, view, view, use_test_credentials="on", permission="system/*.rs")
    assert on.status_code == 303
    assert b"the operator&#39;s test credentials" in portal.get(view).data
    off = _post(portal, view, f"{view}/off")
    assert off.status_code == 303
    with app.app_context():
        assert db.session.get(IntegrationCredential, (application.key, north)) is None
