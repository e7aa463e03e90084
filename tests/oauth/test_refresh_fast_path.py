"""The refresh grant's fast path (``oauth.refresh_fast_path``, PostgreSQL): a cached client's
plain refresh answered beneath Flask in one statement, exactly as the view answers it; every
other case left to the view with nothing written; a lost answer a 503, never the view."""

from __future__ import annotations

import pytest

from app.extensions import db
from oauth.models import RefreshToken
from oauth.refresh_fast_path import RefreshFastPath
from tests.oauth.smart_launch import Launch, smart_app

pytestmark = pytest.mark.usefixtures("postgres_only")


@pytest.fixture
def postgres_only(app):
    if app.extensions["fhirgate_direct_reads"].available is False:
        pytest.skip("the refresh fast path runs over libpq: PostgreSQL only")


@pytest.fixture
def patient(make):
    make.hospital("general", "General Hospital")
    make.patient("general", "p1", "Doe")
    return make.as_role("patient", "general", "p1")


def fast_path(app) -> RefreshFastPath:
    layer = app.wsgi_app
    while not isinstance(layer, RefreshFastPath):
        layer = layer.wsgi_app if hasattr(layer, "wsgi_app") else layer.app
    return layer


def started(client, launch: Launch, patient) -> dict:
    body = launch.exchange(client, launch.code(patient)).get_json()
    assert body["refresh_token"]
    return body


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("kind", ["basic", "post", "public"])
def test_a_plain_refresh_is_answered_beneath_flask_as_the_view_answers_it(
    make, client, patient, view_calls, kind
):
    registered = smart_app(make, public=kind == "public")
    launch = Launch(registered.key, registered.secret)
    first = started(client, launch, patient)
    by_view = launch.refresh(client, first["refresh_token"]) if kind != "post" else None
    calls = len(view_calls)
    current = (by_view.get_json() if by_view is not None else first)["refresh_token"]
    if kind == "post":
        form = {"grant_type": "refresh_token", "refresh_token": current, "client_id": registered.key}
        form["client_secret"] = registered.secret
        fast = client.post("/oauth/token", data=form)
    else:
        fast = launch.refresh(client, current)
    assert fast.status_code == 200, fast.get_json()
    assert len(view_calls) == calls  # not the view
    body = fast.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "patient", "refresh_token"}
    assert body["scope"] == first["scope"] and body["patient"] == "p1" and body["token_type"] == "Bearer"
    assert fast.headers["Cache-Control"] == "no-store" and fast.headers["Pragma"] == "no-cache"
    assert client.get("/fhir/general/Patient/p1", headers=bearer(body["access_token"])).status_code == 200
    assert launch.refresh(client, body["refresh_token"]).status_code == 200  # the next one works


def test_reuse_after_a_fast_refresh_revokes_through_the_view(make, client, patient, view_calls):
    registered = smart_app(make)
    launch = Launch(registered.key, registered.secret)
    first = started(client, launch, patient)
    second = launch.refresh(client, first["refresh_token"]).get_json()
    third = launch.refresh(client, second["refresh_token"]).get_json()  # the fast path, now cached
    calls = len(view_calls)
    reused = launch.refresh(client, second["refresh_token"])
    assert reused.status_code == 400 and reused.get_json()["error"] == "invalid_grant"
    assert len(view_calls) == calls + 1  # the statement wrote nothing: the view found the reuse
    assert client.get("/fhir/general/Patient/p1", headers=bearer(third["access_token"])).status_code == 401
    assert launch.refresh(client, third["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_what_the_fast_path_leaves_to_the_view(make, client, patient, view_calls):
    registered = smart_app(make)
    launch = Launch(registered.key, registered.secret)
    token = launch.refresh(client, started(client, launch, patient)["refresh_token"]).get_json()[
        "refresh_token"
    ]
    calls = len(view_calls)
    narrowed = launch.refresh(client, token, scope="patient/Patient.rs")
    assert narrowed.status_code == 200 and len(view_calls) == calls + 1
    wrong = Launch(registered.key, "apps_wrong").refresh(client, narrowed.get_json()["refresh_token"])
    assert wrong.status_code == 401 and len(view_calls) == calls + 2
    # refused without a write: the right secret still refreshes with that token
    assert launch.refresh(client, narrowed.get_json()["refresh_token"]).status_code == 200


def test_a_lost_answer_is_a_503_and_never_the_view(app, make, client, patient, view_calls, monkeypatch):
    registered = smart_app(make)
    launch = Launch(registered.key, registered.secret)
    token = launch.refresh(client, started(client, launch, patient)["refresh_token"]).get_json()[
        "refresh_token"
    ]
    reads = fast_path(app).reads
    monkeypatch.setattr(reads, "run", lambda *args: None)
    calls = len(view_calls)
    response = launch.refresh(client, token)
    assert response.status_code == 503 and response.get_json()["error"] == "temporarily_unavailable"
    assert "Retry-After" not in response.headers and len(view_calls) == calls  # not blindly again
    with make.app.app_context():
        assert db.session.query(RefreshToken).filter(RefreshToken.used_at.is_(None)).count() == 1
