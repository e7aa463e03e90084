"""Logging in and out through the web form."""

from __future__ import annotations

from app.web.csrf import CROSS_SITE_FORMS
from tests.conftest import PASSWORD
from tests.web.conftest import hidden


def test_login_lands_on_the_role_page_and_logout_ends_the_session(app, make, browser_login):
    make.hospital("general")
    make.patient("general", "p1")
    client = browser_login(make.user("patient", "general", "p1"))
    assert client.get("/portal").status_code == 200
    page = client.get("/portal")
    response = client.post("/logout", data={"csrf_token": hidden(page.data, "csrf_token")})
    assert response.status_code == 303 and "/login" in response.headers["Location"]
    assert client.get("/portal").status_code == 303  # back to the login page
    assert client.get("/api/session").status_code == 401


def test_a_wrong_password_and_an_unknown_email_read_the_same(app, make):
    make.hospital("general")
    email = make.user("developer")
    client = app.test_client()
    token = hidden(client.get("/login").data, "csrf_token")
    wrong = client.post("/login", data={"email": email, "password": "nope" * 4, "csrf_token": token})
    unknown = client.post(
        "/login", data={"email": "nobody@example.org", "password": PASSWORD, "csrf_token": token}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert b"Wrong e-mail or password." in wrong.data and b"Wrong e-mail or password." in unknown.data


def test_forms_without_a_valid_csrf_token_are_refused(app, make, browser_login):
    make.hospital("general")
    make.patient("general", "p1")
    email = make.user("patient", "general", "p1")
    fresh = app.test_client()
    assert fresh.post("/login", data={"email": email, "password": PASSWORD}).status_code == 400
    fresh.get("/login")  # has the pre-session cookie now, but sends a forged token
    forged = fresh.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": "0" * 64})
    assert forged.status_code == 400 and b"did not come from this site" in forged.data
    client = browser_login(email)
    for path, data in [
        ("/portal/credentials", {"name": "X", "form_id": "f" * 24}),
        ("/logout", {}),
    ]:
        assert client.post(path, data=data).status_code == 400, path
    assert client.get("/portal").status_code == 200  # still logged in: the forged logout did nothing


def test_next_redirects_only_to_paths_on_this_site(app, make):
    make.hospital("general")
    email = make.user("developer")
    for target, expected in [
        ("/account", "/account"),
        ("//evil.example", "/developer"),  # refused: the developer's own landing page instead
        ("https://evil.example", "/developer"),
        ("/\\evil.example", "/developer"),
    ]:
        client = app.test_client()
        token = hidden(client.get(f"/login?next={target}").data, "csrf_token")
        response = client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token, "next": target}
        )
        assert response.headers["Location"] == expected, target


def test_portal_pages_carry_security_headers(app):
    page = app.test_client().get("/login")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    assert "httponly" in page.headers["Set-Cookie"].lower()


def test_every_form_of_every_portal_refuses_a_post_without_its_token(app, make, browser_login):
    """Enumerated from the routes, so a new form cannot forget its CSRF check."""
    make.hospital("general")
    client = browser_login(make.user("superadmin"))
    posts = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("web.")
        and "POST" in rule.methods
        and rule.endpoint not in CROSS_SITE_FORMS
    ]
    # The one form other sites send by design (SMART's authorize-post) only asks; the patient's
    # decision that follows is checked here like every other form.
    assert {"web.authorize"} == CROSS_SITE_FORMS
    assert "web.authorize_decision" in {rule.endpoint for rule in posts}
    assert len(posts) >= 9
    for rule in posts:
        path = rule.rule.replace("<hid>", "general").replace("<key>", "x").replace("<client_id>", "x")
        path = path.replace("<approval_id>", "x")
        for token in (None, "0" * 64):
            data = {"form_id": "f" * 24, "name": "X"} | ({"csrf_token": token} if token else {})
            response = client.post(path, data=data)
            assert response.status_code == 400 and b"did not come from this site" in response.data, path


def test_failed_form_logins_slow_down(app, make, monkeypatch):
    monkeypatch.setitem(app.config, "FHIRGATE_LOGIN_FAILURE_LIMIT", "3/minute")
    email = make.user("developer")
    client = app.test_client()
    token = hidden(client.get("/login").data, "csrf_token")
    form = {"email": email, "password": "wrong" * 4, "csrf_token": token}
    statuses = [client.post("/login", data=form).status_code for _ in range(3)]
    # From another address, the right password, the e-mail in capitals: the account's counter holds.
    later = client.post(
        "/login", data={**form, "email": email.upper(), "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )  # fmt: skip
    assert statuses + [later.status_code] == [401, 401, 401, 429]
