"""``/api/session``: server-side sessions, safe cookies, equal failures, slow-downs."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD


def test_login_sets_a_safe_session_cookie(app, make):
    email = make.user("developer")
    client = app.test_client()
    response = client.post("/api/session", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    assert response.get_json()["role"] == "developer"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert client.get("/api/session").get_json()["email"] == email


def test_cookie_is_secure_when_served_over_https(app, make, monkeypatch):
    monkeypatch.setitem(app.config, "FHIRGATE_BASE_URL", "https://fhir.example.org")
    email = make.user("developer")
    response = app.test_client().post("/api/session", json={"email": email, "password": PASSWORD})
    assert "Secure" in response.headers["Set-Cookie"]


def test_unknown_user_and_wrong_password_get_the_same_answer(app, make):
    email = make.user("developer")
    client = app.test_client()
    wrong = client.post("/api/session", json={"email": email, "password": "not the password"})
    unknown = client.post("/api/session", json={"email": "nobody@example.org", "password": "whatever"})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.get_json()
        == unknown.get_json()
        == {"error": "unauthenticated", "message": "Wrong e-mail or password."}
    )


def test_each_login_gets_a_new_session_id(app, make):
    email = make.user("developer")
    client = app.test_client()
    first = client.post("/api/session", json={"email": email, "password": PASSWORD}).headers["Set-Cookie"]
    second = client.post("/api/session", json={"email": email, "password": PASSWORD}).headers["Set-Cookie"]
    assert first.split(";")[0] != second.split(";")[0]


def test_logout_ends_the_session_on_the_server(app, make):
    email = make.user("developer")
    client = app.test_client()
    response = client.post("/api/session", json={"email": email, "password": PASSWORD})
    cookie_value = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert client.delete("/api/session").status_code == 204
    # Replaying the old cookie after logout does not bring the session back.
    replay = app.test_client()
    replay.set_cookie("fhirgate_session", cookie_value)
    assert replay.get("/api/apps").status_code == 401


def test_session_table_holds_no_usable_cookie(app, make, ctx):
    from app.extensions import db
    from app.models import WebSession

    email = make.user("developer")
    response = app.test_client().post("/api/session", json={"email": email, "password": PASSWORD})
    cookie_value = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    rows = db.session.query(WebSession).all()
    assert rows and all(cookie_value not in row.token_hash for row in rows)


def test_repeated_failed_logins_slow_down(app, make, monkeypatch):
    monkeypatch.setitem(app.config, "FHIRGATE_LOGIN_FAILURE_LIMIT", "3/minute")
    email = make.user("developer")
    client = app.test_client()
    statuses = [
        client.post("/api/session", json={"email": email, "password": "wrong"}).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    blocked = client.post("/api/session", json={"email": email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    assert blocked.get_json()["error"] == "rate_limited"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": {"email": "a@b.c", "password": "x"}},
        {"data": "not json", "content_type": "application/json"},
        {"json": ["a", "list"]},
        {"json": {"email": "a@b.c"}},
        {"json": {"email": 5, "password": "x"}},
        {"json": {"email": "a@b.c", "password": "x", "extra": 1}},
    ],
)
def test_bad_login_bodies_are_4xx_json(app, kwargs):
    response = app.test_client().post("/api/session", **kwargs)
    assert 400 <= response.status_code < 500
    body = response.get_json()
    assert set(body) == {"error", "message"}
