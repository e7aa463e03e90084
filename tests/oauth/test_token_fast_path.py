"""The token endpoint's fast path (``oauth.token_fast_path``): taken for a cached client's
common request, answering exactly as the Flask view would, and leaving everything else,
every limit and every revocation to it."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text

from app.direct_reads import REST_AFTER_FAILURE_S
from app.extensions import db
from app.timeutil import as_utc, utcnow
from oauth.epoch_reader import EPOCH_QUERY, EpochReader, epoch_reader
from oauth.models import OAuthClient
from oauth.token_fast_path import TokenFastPath, _remembered_forms
from oauth.validity import bump_epoch, validity_cache
from tests.conftest import BASE_URL, basic_auth
from tests.oauth.test_token_flows import decode_with_jwks

GRANT = {"grant_type": "client_credentials"}
FORM = "application/x-www-form-urlencoded"
# Claims that differ between any two tokens.
PER_TOKEN = {"jti", "iat", "exp"}


def by_basic(cred, **form) -> dict:
    return {"data": {**GRANT, **form}, "headers": basic_auth(cred.key, cred.secret)}


def by_post(cred, **form) -> dict:
    return {"data": {**GRANT, "client_id": cred.key, "client_secret": cred.secret, **form}}


def fast_path(app) -> TokenFastPath:
    layer = app.wsgi_app
    while not isinstance(layer, TokenFastPath):
        # The read fast path (outside it) keeps the next layer as wsgi_app, ProxyFix as app.
        layer = layer.wsgi_app if hasattr(layer, "wsgi_app") else layer.app
    return layer


@pytest.fixture
def post(client, app, monkeypatch):
    """POST /oauth/token with the fast path switched on or off for that request."""

    def post(fast: bool, **kwargs):
        monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_FAST_PATH", fast)
        return client.post("/oauth/token", **kwargs)

    return post


@pytest.fixture
def key(make):
    make.hospital("general")
    return make.api_key("general", permissions=["system/Patient.rs", "system/Observation.rs"])


@pytest.fixture
def cached_key(key, post, view_calls):
    """A key whose first request the view has answered, caching the client for the next."""
    assert post(True, **by_basic(key)).status_code == 200
    view_calls.clear()
    return key


def assert_same_success(fast, slow, client) -> None:
    """Same status, headers, body and token but for what differs between any two tokens."""
    assert fast.status_code == slow.status_code == 200, (fast.get_json(), slow.get_json())
    assert sorted(fast.headers.keys()) == sorted(slow.headers.keys())
    for name in ("Content-Type", "Cache-Control", "Pragma", "X-Content-Type-Options", "Referrer-Policy"):
        assert fast.headers[name] == slow.headers[name]
    assert fast.headers["Cache-Control"] == "no-store" and fast.headers["Pragma"] == "no-cache"
    fast_body, slow_body = fast.get_json(), slow.get_json()
    fast_token = decode_with_jwks(client, fast_body.pop("access_token"))
    slow_token = decode_with_jwks(client, slow_body.pop("access_token"))
    assert fast_body == slow_body
    assert fast_token.header == slow_token.header
    assert fast_token.claims.keys() == slow_token.claims.keys()
    assert {k: v for k, v in fast_token.claims.items() if k not in PER_TOKEN} == {
        k: v for k, v in slow_token.claims.items() if k not in PER_TOKEN
    }
    assert fast_token.claims["exp"] - fast_token.claims["iat"] == fast_body["expires_in"]


def test_a_cached_clients_request_is_answered_without_the_view(post, key, view_calls):
    statuses = [post(True, **by_basic(key)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(view_calls) == 1  # the first, which cached the client


def test_with_the_fast_path_off_the_view_answers_every_request(post, key, view_calls):
    statuses = [post(False, **by_basic(key)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(view_calls) == 3


@pytest.mark.parametrize("credentials", [by_basic, by_post])
@pytest.mark.parametrize(
    "form", [{}, {"scope": "system/Patient.r"}, {"resource": f"{BASE_URL}/fhir/general"}]
)
def test_the_fast_path_answers_an_api_key_as_the_view_does(
    post, cached_key, view_calls, client, credentials, form
):
    fast = post(True, **credentials(cached_key, **form))
    assert view_calls == []
    slow = post(False, **credentials(cached_key, **form))
    assert len(view_calls) == 1
    assert_same_success(fast, slow, client)


@pytest.mark.parametrize("kind", ["patient_credential", "application"])
def test_the_fast_path_answers_other_credentials_as_the_view_does(
    post, make, sandbox, view_calls, client, kind
):
    make.hospital("general")
    cred = make.patient_credential("general") if kind == "patient_credential" else make.application()
    assert post(True, **by_basic(cred)).status_code == 200
    fast = post(True, **by_basic(cred))
    slow = post(False, **by_basic(cred))
    assert len(view_calls) == 2  # the first and the last
    assert_same_success(fast, slow, client)


def test_an_application_reaching_two_hospitals_gets_the_views_answer_with_and_without_resource(
    post, make, sandbox, view_calls, client
):
    make.hospital("general")
    cred = make.application()
    admin = make.as_role("hospital-admin", "general")
    admin.put(f"/api/hospitals/general/apps/{cred.key}", json={"permissions": ["system/Patient.r"]})
    named = by_basic(cred, resource=f"{BASE_URL}/fhir/general")
    assert post(True, **named).status_code == 200
    assert_same_success(post(True, **named), post(False, **named), client)
    # Without a resource: one token for both hospitals, alike both ways, whole or narrowed.
    for form in ({}, {"scope": "system/Patient.r system/Observation.rs"}, {"scope": "system/Patient.r"}):
        assert_same_success(
            post(True, **by_basic(cred, **form)), post(False, **by_basic(cred, **form)), client
        )
    unnamed = decode_with_jwks(client, post(True, **by_basic(cred)).get_json()["access_token"]).claims
    assert unnamed["aud"] == [f"{BASE_URL}/fhir/general", f"{BASE_URL}/fhir/sandbox"]
    nowhere = [post(fast, **by_basic(cred, scope="system/Patient.cruds")) for fast in (True, False)]
    assert [(r.status_code, r.get_json()["error"]) for r in nowhere] == [(400, "invalid_scope")] * 2
    assert len(view_calls) == 7  # the first, each slow one, and both refusals


def test_over_https_both_answers_carry_hsts(post, cached_key, view_calls, client):
    fast = post(True, base_url="https://localhost", **by_basic(cached_key))
    slow = post(False, base_url="https://localhost", **by_basic(cached_key))
    assert len(view_calls) == 1
    assert_same_success(fast, slow, client)
    assert fast.headers["Strict-Transport-Security"] == slow.headers["Strict-Transport-Security"]


def test_a_form_content_type_with_a_charset_is_answered_as_the_view_does(
    post, cached_key, view_calls, client
):
    body = f"grant_type=client_credentials&client_id={cached_key.key}&client_secret={cached_key.secret}"
    fast = post(True, data=body, content_type=f"{FORM}; charset=UTF-8")
    slow = post(False, data=body, content_type=f"{FORM}; charset=UTF-8")
    assert len(view_calls) == 1
    assert_same_success(fast, slow, client)


def _raw(body: str | bytes):
    return lambda cred: {"data": body, "content_type": FORM, "headers": basic_auth(cred.key, cred.secret)}


FALLBACKS = {
    "wrong secret by Basic": (
        lambda cred: {"data": GRANT, "headers": basic_auth(cred.key, "hks_wrong")},
        401,
        "invalid_client",
    ),
    "wrong secret by post": (
        lambda cred: {"data": {**GRANT, "client_id": cred.key, "client_secret": "hks_wrong"}},
        401,
        "invalid_client",
    ),
    "unknown parameter": (lambda cred: by_basic(cred, audience="elsewhere"), 200, None),
    "repeated parameter": (
        _raw("grant_type=client_credentials&scope=system/Patient.rs&scope=system/Patient.rs"),
        400,
        "invalid_request",
    ),
    "query string": (
        lambda cred: {**by_basic(cred), "query_string": "scope=system/Patient.rs"},
        400,
        "invalid_request",
    ),
    "scope not held": (lambda cred: by_basic(cred, scope="system/Encounter.rs"), 400, "invalid_scope"),
    "empty scope": (lambda cred: by_basic(cred, scope=""), 400, "invalid_scope"),
    "empty resource": (lambda cred: by_basic(cred, resource=""), 400, "invalid_request"),
    "unknown resource": (
        lambda cred: by_basic(cred, resource=f"{BASE_URL}/fhir/other"),
        400,
        "invalid_target",
    ),
    "Basic and client_secret": (
        lambda cred: by_basic(cred, client_secret=cred.secret),
        400,
        "invalid_request",
    ),
    "client_id differing from Basic": (
        lambda cred: by_basic(cred, client_id="hk_other"),
        400,
        "invalid_request",
    ),
    "another grant type": (lambda cred: by_basic(cred, grant_type="password"), 400, "unsupported_grant_type"),
    "non-ASCII body": (
        _raw("grant_type=client_credentials&scope=système/Patient.rs".encode()),
        400,
        "invalid_scope",
    ),
    "non-ASCII once decoded": (
        _raw("grant_type=client_credentials&scope=syst%C3%A8me/Patient.rs"),
        400,
        "invalid_scope",
    ),
    "a control character once decoded": (
        _raw("grant_type=client_credentials&scope=system/Patient.rs%0A"),
        400,
        "invalid_scope",
    ),
    "client_id without a secret": (
        lambda cred: {"data": {**GRANT, "client_id": cred.key}},
        401,
        "invalid_client",
    ),
}


@pytest.mark.parametrize("case", FALLBACKS)
def test_a_request_the_fast_path_leaves_gets_the_views_answer(post, cached_key, view_calls, case):
    request, status, error = FALLBACKS[case]
    on = post(True, **request(cached_key))
    off = post(False, **request(cached_key))
    assert len(view_calls) == 2
    assert (on.status_code, on.get_json().get("error")) == (off.status_code, off.get_json().get("error"))
    assert (on.status_code, on.get_json().get("error")) == (status, error)
    assert on.headers.get("WWW-Authenticate") == off.headers.get("WWW-Authenticate")


@pytest.mark.parametrize(
    ("switches", "views"),
    [
        ([False, True, True, True], 2),  # the view's count stops the fast path
        ([True, False, True, False], 3),  # the fast path's count stops the view
    ],
)
def test_the_client_rate_limit_is_shared_with_the_view(
    post, key, view_calls, app, monkeypatch, switches, views
):
    monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_RATE_LIMIT", "3/minute")
    statuses = [post(fast, **by_basic(key)).status_code for fast in switches]
    assert statuses == [200, 200, 200, 429]
    assert len(view_calls) == views


def test_an_address_that_failed_for_a_client_is_refused_with_its_right_secret(
    post, cached_key, app, monkeypatch, make, view_calls
):
    other = make.api_key("general")
    assert post(True, **by_basic(other)).status_code == 200  # cached too
    monkeypatch.setitem(app.config, "FHIRGATE_AUTH_FAILURE_LIMIT", "2/minute")
    wrong = {"data": GRANT, "headers": basic_auth(cached_key.key, "hks_wrong")}
    assert [post(True, **wrong).status_code for _ in range(2)] == [401, 401]
    assert post(True, **by_basic(cached_key)).status_code == 429
    # The failures were this client id's at this address: another client here goes on, fast.
    calls = len(view_calls)
    assert post(True, **by_basic(other)).status_code == 200
    assert len(view_calls) == calls


def test_deleting_a_cached_key_refuses_its_very_next_request(post, cached_key, make, view_calls):
    assert post(True, **by_basic(cached_key)).status_code == 200
    assert view_calls == []
    admin = make.as_role("hospital-admin", "general")
    assert admin.delete(f"/api/hospitals/general/api-keys/{cached_key.key}").status_code == 204
    assert post(True, **by_basic(cached_key)).status_code == 401


def test_rotating_a_cached_secret_refuses_the_old_one_and_takes_the_new_at_once(
    post, make, sandbox, view_calls
):
    developer = make.as_role("developer")
    cred = make.application(developer)
    assert [post(True, **by_basic(cred)).status_code for _ in range(2)] == [200, 200]
    assert len(view_calls) == 1
    rotated = developer.post(f"/api/apps/{cred.key}/secret").get_json()["client_secret"]
    assert post(True, **by_basic(cred)).status_code == 401
    assert post(True, **by_basic(replace(cred, secret=rotated))).status_code == 200


def test_after_an_unrelated_epoch_bump_the_view_reloads_the_client_once(post, cached_key, make, view_calls):
    make.hospital("other")  # bumps the epoch: every worker's cache is stale
    statuses = [post(True, **by_basic(cached_key)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(view_calls) == 1


def test_a_last_use_due_to_be_recorded_is_left_to_the_view(post, cached_key, app, view_calls):
    long_ago = utcnow() - timedelta(minutes=5)
    with app.app_context():
        validity_cache().cached_endpoint_client(cached_key.key)[0].last_used_at = long_ago
    assert post(True, **by_basic(cached_key)).status_code == 200
    assert len(view_calls) == 1
    with app.app_context():
        assert as_utc(db.session.get(OAuthClient, cached_key.key).last_used_at) > long_ago


def test_when_the_epoch_cannot_be_read_the_view_answers(post, cached_key, app, monkeypatch, view_calls):
    monkeypatch.setattr(fast_path(app).epochs, "start", lambda: lambda: None)
    assert post(True, **by_basic(cached_key)).status_code == 200
    assert len(view_calls) == 1


@pytest.fixture
def reader(ctx) -> EpochReader:
    return epoch_reader()


def dialect() -> str:
    return db.engine.dialect.name


def test_the_epoch_reader_sees_a_bump_at_once(reader):
    before = reader.read()
    assert before == (db.session.execute(text(EPOCH_QUERY)).scalar() or 0)
    bump_epoch()
    db.session.commit()
    assert reader.read() == before + 1


def test_a_failed_pooled_epoch_read_answers_none_and_the_next_one_works(reader, monkeypatch):
    if dialect() != "sqlite":
        pytest.skip("PostgreSQL reads over a connection of its own")
    before = reader.read()

    def broken():
        raise OSError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(db.engine, "raw_connection", broken)
        assert reader.read() is None
    assert reader.read() == before


def test_an_epoch_read_on_a_killed_connection_answers_none_and_a_later_one_reconnects(reader, monkeypatch):
    if dialect() != "postgresql":
        pytest.skip("only PostgreSQL reads over a connection of its own")
    before = reader.read()
    killed = reader._reads._local.held[1]
    db.session.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": killed.info.backend_pid})
    db.session.commit()
    assert reader.read() is None
    assert reader.read() is None  # direct reads rest a while after a failure
    later = time.monotonic() + REST_AFTER_FAILURE_S + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert reader.read() == before
    assert reader._reads._local.held[1] is not killed


def test_a_failure_inside_the_fast_path_leaves_the_request_to_the_view(
    post, cached_key, monkeypatch, view_calls
):
    def broken(*args):
        raise ConnectionError("the limits' store is down")

    monkeypatch.setattr("oauth.token_limits.admit", broken)
    assert post(True, **by_basic(cached_key)).status_code == 200
    assert len(view_calls) == 1


def test_a_signing_key_due_to_be_reread_is_left_to_the_view(post, cached_key, app, view_calls):
    app.extensions["fhirgate_keyring"].invalidate()  # as after RELOAD_SECONDS: reading needs the view
    assert [post(True, **by_basic(cached_key)).status_code for _ in range(2)] == [200, 200]
    assert len(view_calls) == 1  # the view read the keys; the second was the fast path's again


def test_a_form_with_a_secret_is_parsed_every_time_and_never_remembered(post, key, view_calls):
    _remembered_forms.clear()
    statuses = [post(True, **by_post(key)).status_code for _ in range(3)]
    # The parameter's name percent-encoded is still client_secret, to the view and to the fast path.
    encoded = f"grant_type=client_credentials&client_id={key.key}&client%5Fsecret={key.secret}"
    statuses += [post(True, data=encoded, content_type=FORM).status_code for _ in range(2)]
    assert statuses == [200] * 5
    assert len(view_calls) == 1  # the fast path answered client_secret_post too
    assert _remembered_forms == {}
    assert post(True, **by_basic(key)).status_code == 200
    assert list(_remembered_forms.values()) == [{"grant_type": "client_credentials"}]
