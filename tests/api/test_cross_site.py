"""A page on another site cannot change anything through the management API with a
logged-in person's cookie: every POST, PUT, PATCH and DELETE under /api must show it is not
cross-site. Sent over a socket the way a victim's browser would send the attacker's forms."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import PASSWORD, Credential, token_request
from tests.servers import threaded_server
from tests.web.conftest import hidden

EVIL = "https://evil.example"


@pytest.fixture(scope="module")
def served(app):
    """One server for the module (it holds no state; the tables are emptied after each test)."""
    with threaded_server(app) as url:
        yield url


@pytest.fixture
def victim(served, make, sandbox):
    """A developer logged in through the API (the session cookie a browser would hold) and
    an application of theirs."""
    session = requests.Session()
    email = make.user("developer")
    login = session.post(f"{served}/api/session", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    created = session.post(f"{served}/api/apps", json={"name": "Victim app"})
    assert created.status_code == 201
    return session, created.json()


def _form_post(content_type: str | None, body: bytes = b"", **headers: str) -> dict:
    """What a browser sends for a form (or a no-cors fetch) aimed at us from elsewhere."""
    sent = dict(headers)
    if content_type:
        sent["Content-Type"] = content_type
    return {"data": body, "headers": sent}


ATTACKS = {
    "bodyless form, no Origin (an old browser)": _form_post("application/x-www-form-urlencoded"),
    "bodyless form from another site": _form_post(
        "application/x-www-form-urlencoded", Origin=EVIL, **{"Sec-Fetch-Site": "cross-site"}
    ),
    "form with fields, foreign Origin": _form_post("application/x-www-form-urlencoded", b"a=1", Origin=EVIL),
    "text/plain form": _form_post("text/plain", b'{"name": "x"}'),
    "empty text/plain form": _form_post("text/plain", Origin=EVIL),
    "multipart form": _form_post(
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n',
    ),
    "empty multipart form": _form_post("multipart/form-data; boundary=x"),
    "no-cors fetch without a body": _form_post(None, Origin=EVIL, **{"Sec-Fetch-Site": "cross-site"}),
    "JSON from a foreign Origin": _form_post("application/json", b"{}", Origin=EVIL),
    "a sandboxed frame (Origin: null)": _form_post(None, Origin="null"),
    "a sibling subdomain (same site)": _form_post(None, **{"Sec-Fetch-Site": "same-site"}),
    "Fetch Metadata alone says cross-site": _form_post(None, **{"Sec-Fetch-Site": "cross-site"}),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_cross_site_request_cannot_rotate_a_secret(served, victim, client, attack):
    session, application = victim
    response = session.post(f"{served}/api/apps/{application['client_id']}/secret", **ATTACKS[attack])
    assert response.status_code in (403, 415), response.text
    assert set(response.json()) == {"error", "message"}
    # The secret was not rotated: the old one still gets tokens.
    old = Credential(application["client_id"], application["client_secret"], application)
    assert token_request(client, old).status_code == 200


def test_every_state_changing_route_under_api_is_checked(served, victim, app):
    """Enumerated from the routes, so a new one cannot forget the check."""
    session, application = victim
    routes = [
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"})
    ]
    assert len(routes) >= 15
    attacks = ("bodyless form from another site", "no-cors fetch without a body", "empty text/plain form")
    for method, rule in routes:
        path = rule.replace("<client_id>", application["client_id"]).replace("<hid>", "sandbox")
        path = path.replace("<key>", "x").replace("<pid>", "x")
        for attack in attacks:
            response = session.request(method, f"{served}{path}", **ATTACKS[attack])
            assert response.status_code in (403, 415), (method, path, attack, response.status_code)
    listed = session.get(f"{served}/api/apps").json()
    assert [each["client_id"] for each in listed] == [application["client_id"]]


def test_logout_cannot_be_forced_from_another_site(served, victim):
    session, _ = victim
    response = session.delete(f"{served}/api/session", headers={"Origin": EVIL})
    assert response.status_code == 403
    assert session.get(f"{served}/api/session").status_code == 200


def test_scripts_and_this_sites_own_requests_still_work(served, victim, client):
    """curl and client libraries send no Origin; a browser on this site sends its own."""
    session, application = victim
    secret_url = f"{served}/api/apps/{application['client_id']}/secret"
    assert session.post(secret_url).status_code == 200  # curl -X POST, no body, no type
    assert session.post(secret_url, headers={"Content-Type": "application/json"}).status_code == 200
    assert session.post(secret_url, json={}, headers={"Content-Type": "application/json; charset=utf-8"})
    own = {"Origin": served, "Sec-Fetch-Site": "same-origin"}
    assert session.post(secret_url, headers=own).status_code == 200
    assert session.post(f"{served}/api/apps", json={"name": "Second"}, headers=own).status_code == 201
    # Reads are not state changes: a foreign Origin may GET (no CORS: it cannot read the answer).
    assert session.get(f"{served}/api/apps", headers={"Origin": EVIL}).status_code == 200
    assert session.delete(f"{served}/api/session").status_code == 204


def test_the_configured_public_origin_is_this_site_too(served, victim, app, monkeypatch):
    """Behind a proxy the browser's Origin is the public base URL, not the address served."""
    monkeypatch.setitem(app.config, "FHIRGATE_BASE_URL", "https://fhir.example.org")
    session, application = victim
    url = f"{served}/api/apps/{application['client_id']}/secret"
    assert session.post(url, headers={"Origin": "https://fhir.example.org"}).status_code == 200
    assert session.post(url, headers={"Origin": "https://fhir.example.org:8443"}).status_code == 403
    assert session.post(url, headers={"Origin": "http://fhir.example.org"}).status_code == 403


def test_the_portals_form_posts_are_not_affected(served, make, sandbox):
    """The portals post forms with CSRF tokens outside /api, from this site."""
    browser = requests.Session()
    token = hidden(browser.get(f"{served}/login").text, "csrf_token")
    own = {"Origin": served, "Sec-Fetch-Site": "same-origin"}
    login = browser.post(
        f"{served}/login",
        data={"email": make.user("developer"), "password": PASSWORD, "csrf_token": token},
        headers=own,
        allow_redirects=False,
    )
    assert login.status_code == 303
    page = browser.get(f"{served}/developer/apps/new")
    created = browser.post(
        f"{served}/developer/apps",
        data={
            "name": "From the portal",
            "csrf_token": hidden(page.text, "csrf_token"),
            "form_id": hidden(page.text, "form_id"),
        },
        headers=own,
    )
    assert created.status_code == 200 and "From the portal" in created.text
