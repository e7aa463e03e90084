"""Security headers an attacker's page meets: no response of ours may be framed."""

from __future__ import annotations

from tests.conftest import token_request


def _framing_refused(response) -> None:
    assert response.headers.get("X-Frame-Options") == "DENY", response.headers


def test_portal_pages_and_their_error_pages_refuse_framing(app, make, browser_login):
    """Older browsers honour only X-Frame-Options, not the CSP's frame-ancestors."""
    client = app.test_client()
    login = client.get("/login")
    assert login.mimetype == "text/html"
    _framing_refused(login)
    developer = browser_login(make.user("developer"))
    for path, status in [("/developer", 200), ("/developer/apps/app_nope", 404), ("/admin/general", 403)]:
        page = developer.get(path)
        assert page.status_code == status and page.mimetype == "text/html", path
        _framing_refused(page)


def test_json_and_fhir_answers_refuse_framing_too(app, make, client):
    """Beside the pages: the API, the token endpoint on both of its paths, FHIR."""
    make.hospital("general")
    key = make.api_key("general")
    _framing_refused(client.get("/api/session"))
    _framing_refused(client.get("/"))
    first, second = token_request(client, key), token_request(client, key)  # view, then fast path
    assert first.status_code == second.status_code == 200
    _framing_refused(first)
    _framing_refused(second)
    make.patient("general", "p1")
    bearer = {"Authorization": f"Bearer {key.body['token']}"}
    for path, status in [("Patient/p1", 200), ("Patient/nope", 404)]:  # the fast path on PostgreSQL
        read = client.get(f"/fhir/general/{path}", headers=bearer)
        assert read.status_code == status
        _framing_refused(read)
