"""SMART App Launch from the attacker's side: PKCE missing, plain or wrong; a code reused, stolen
by another client or sent with another redirect URI; unregistered redirect URIs; another
hospital's or an unknown audience; consent forged across sites or framed; a patient granting
someone else's record; unticked scopes; the chosen expiry; refresh tokens reused, revoked, or
sent by a confidential client without its secret."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.extensions import db
from app.timeutil import utcnow
from oauth.models import Authorization
from tests.conftest import BASE_URL
from tests.oauth.smart_launch import REDIRECT, Launch, consent_form, pkce_pair, query_of, smart_app


@pytest.fixture
def general(make):
    make.hospital("general", "General Hospital")
    make.patient("general", "p1", "Doe")
    make.patient("general", "p2", "Roe")
    return "general"


@pytest.fixture
def patient(make, general):
    return make.as_role("patient", general, "p1")


@pytest.fixture
def registered(make):
    return smart_app(make)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def redirected_error(response) -> dict:
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    assert response.headers["Location"].startswith(REDIRECT + "?")
    params = query_of(response.headers["Location"])
    assert "code" not in params and params["iss"] == BASE_URL
    return params


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # RFC 7636's default is plain
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": None}, "invalid_scope"),
        ({"request": "eyJ.x.y"}, "request_not_supported"),
        ({"prompt": "none"}, "interaction_required"),
    ],
)
def test_authorization_request_errors_go_back_with_state_and_iss(registered, patient, extra, error):
    launch = Launch(registered.key, registered.secret, extra=extra)
    params = redirected_error(patient.get(launch.authorize_url()))
    assert params["error"] == error and params["state"] == launch.state


def test_no_state_is_an_error_without_state(registered, patient):
    launch = Launch(registered.key, registered.secret, extra={"state": None})
    params = redirected_error(patient.get(launch.authorize_url()))
    assert params["error"] == "invalid_request" and "state" not in params


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        REDIRECT + "/x",
        REDIRECT + "?x=1",
        REDIRECT.upper(),
        "https://app.example/",
    ],
)
def test_an_unregistered_redirect_uri_shows_a_page_and_never_redirects(registered, patient, redirect_uri):
    response = patient.get(
        Launch(registered.key, registered.secret, redirect_uri=redirect_uri).authorize_url()
    )
    assert response.status_code == 400 and "Location" not in response.headers
    assert "not registered" in response.get_data(as_text=True)


def test_an_unknown_client_or_a_non_application_shows_a_page(make, patient, general):
    for client_id in ("app_nope", "", make.api_key(general).key):
        response = patient.get(Launch(client_id, None).authorize_url())
        assert response.status_code == 400 and "Location" not in response.headers


def test_a_repeated_redirect_uri_is_not_trusted(registered, patient):
    url = (
        Launch(registered.key, registered.secret).authorize_url()
        + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"
    )
    response = patient.get(url)
    assert response.status_code == 400 and "Location" not in response.headers


def test_another_hospitals_patient_cannot_approve(make, registered, general):
    make.hospital("north", "North")
    make.patient("north", "p1", "Other")
    northerner = make.as_role("patient", "north", "p1")
    launch = Launch(registered.key, registered.secret)  # aud: general
    page = launch.consent(northerner).get_data(as_text=True)
    assert "another hospital" in page and 'value="approve"' not in page
    forged = launch.decide(northerner)  # the decision sent anyway
    assert forged.status_code == 403 and "Location" not in forged.headers
    with make.app.app_context():
        assert db.session.query(Authorization).count() == 0


def test_a_staff_account_cannot_approve_for_a_patient(make, registered, general):
    admin = make.as_role("hospital-admin", general)
    launch = Launch(registered.key, registered.secret)
    assert "not a patient" in launch.consent(admin).get_data(as_text=True)
    assert launch.decide(admin).status_code == 403


def test_a_patient_grants_only_their_own_record(make, client, registered, patient):
    """Whatever the form says (a patient field, another aud), the grant is the signed-in patient's."""
    launch = Launch(registered.key, registered.secret)
    code = launch.code(patient, form_overrides={"patient": "p2", "patient_id": "p2"})
    body = launch.exchange(client, code).get_json()
    assert body["patient"] == "p1"
    assert client.get("/fhir/general/Patient/p2", headers=bearer(body["access_token"])).status_code == 404


def test_consent_forged_across_sites_is_refused(make, registered, patient):
    launch = Launch(registered.key, registered.secret)
    form = consent_form(launch.consent(patient).get_data(as_text=True))
    data = {**form.hidden, "grant": form.grants, "expiry": "never", "decision": "approve"}
    for forged in ({**data, "csrf_token": "0" * 64}, {k: v for k, v in data.items() if k != "csrf_token"}):
        response = patient.post("/oauth/authorize/decision", data=forged)
        assert response.status_code == 400 and "Location" not in response.headers
    with make.app.app_context():
        assert db.session.query(Authorization).count() == 0


def test_the_consent_page_cannot_be_framed(registered, patient):
    page = Launch(registered.key, registered.secret).consent(patient)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "no-store" in page.headers["Cache-Control"]


def test_unticked_scopes_are_absent_from_the_token_and_introspection(
    make, client, registered, patient, general
):
    launch = Launch(registered.key, registered.secret)
    body = launch.exchange(client, launch.code(patient, untick=["patient/Observation.rs"])).get_json()
    assert "patient/Observation.rs" not in body["scope"].split()
    key = make.api_key(general)
    from tests.conftest import basic_auth

    seen = client.post(
        "/oauth/introspect", data={"token": body["access_token"]}, headers=basic_auth(key.key, key.secret)
    )
    assert seen.get_json()["active"] is True and "patient/Observation.rs" not in seen.get_json()["scope"]
    assert seen.get_json()["patient"] == "p1"
    assert client.get("/fhir/general/Observation", headers=bearer(body["access_token"])).status_code == 403


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"code_verifier": None}, "no verifier"),
        ({"code_verifier": ""}, "empty verifier"),
        ({"code_verifier": pkce_pair()[0]}, "another verifier"),
        ("challenge", "the challenge as verifier"),
        ({"redirect_uri": "https://app.example/other"}, "another redirect_uri"),
        ({"code": "BAD_CODE"}, "an invalid code"),
    ],
)
def test_the_code_exchange_refuses_with_400(client, registered, patient, change, description):
    launch = Launch(registered.key, registered.secret)
    code = launch.code(patient)
    overrides = {"code_verifier": launch.challenge} if change == "challenge" else dict(change)
    response = launch.exchange(client, overrides.pop("code", code), **overrides)
    assert response.status_code == 400, description
    assert response.get_json()["error"] in ("invalid_grant", "invalid_request"), description


def test_a_code_used_twice_revokes_what_the_first_use_issued(client, registered, patient):
    launch = Launch(registered.key, registered.secret)
    code = launch.code(patient)
    first = launch.exchange(client, code).get_json()
    assert client.get("/fhir/general/Patient/p1", headers=bearer(first["access_token"])).status_code == 200
    second = launch.exchange(client, code)
    assert second.status_code == 400 and second.get_json()["error"] == "invalid_grant"
    assert client.get("/fhir/general/Patient/p1", headers=bearer(first["access_token"])).status_code == 401
    assert launch.refresh(client, first["refresh_token"]).status_code == 400


def test_a_code_used_by_another_client_is_refused(make, client, registered, patient):
    thief = smart_app(make)
    launch = Launch(registered.key, registered.secret)
    code = launch.code(patient)
    stolen = Launch(thief.key, thief.secret, verifier=launch.verifier, challenge=launch.challenge)
    response = stolen.exchange(client, code)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_a_code_lives_sixty_seconds(make, client, registered, patient):
    launch = Launch(registered.key, registered.secret)
    code = launch.code(patient)
    with make.app.app_context():
        db.session.execute(update(Authorization).values(code_expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    response = launch.exchange(client, code)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_a_wrong_client_secret_or_unknown_client_at_the_exchange(client, registered, patient):
    launch = Launch(registered.key, registered.secret)
    code = launch.code(patient)
    assert (
        Launch(registered.key, "apps_wrong", verifier=launch.verifier).exchange(client, code).status_code
        == 401
    )
    bad = Launch("BAD_CLIENT_ID", registered.secret, verifier=launch.verifier).exchange(client, code)
    assert bad.status_code in (400, 401) and bad.get_json()["error"] == "invalid_client"


def test_a_confidential_client_cannot_refresh_without_authenticating(client, registered, patient):
    launch = Launch(registered.key, registered.secret)
    body = launch.exchange(client, launch.code(patient)).get_json()
    response = launch.refresh(client, body["refresh_token"], authenticate=False)
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    # and refused before anything was spent
    assert launch.refresh(client, body["refresh_token"]).status_code == 200


def test_a_confidential_client_cannot_exchange_as_public(client, registered, patient):
    launch = Launch(registered.key, registered.secret)
    code = launch.code(patient)
    response = Launch(registered.key, None, verifier=launch.verifier).exchange(client, code)
    assert response.status_code == 401


def test_refresh_token_reuse_revokes_the_whole_authorization(client, registered, patient):
    launch = Launch(registered.key, registered.secret)
    first = launch.exchange(client, launch.code(patient)).get_json()
    second = launch.refresh(client, first["refresh_token"]).get_json()
    reused = launch.refresh(client, first["refresh_token"])
    assert reused.status_code == 400 and reused.get_json()["error"] == "invalid_grant"
    assert client.get("/fhir/general/Patient/p1", headers=bearer(second["access_token"])).status_code == 401
    after = launch.refresh(client, second["refresh_token"])
    assert after.status_code == 400 and after.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("token", ["6b1c8f0e-8c1b-4c55-9f0e-9f7d7f3d2a11", "rt_" + "A" * 43, ""])
def test_a_made_up_refresh_token_is_refused(client, registered, token):
    response = Launch(registered.key, registered.secret).refresh(client, token)
    assert response.status_code == 400 and response.get_json()["error"] in (
        "invalid_grant",
        "invalid_request",
    )


def test_the_chosen_expiry_bounds_access_and_refresh_tokens(make, client, registered, patient):
    launch = Launch(registered.key, registered.secret)
    body = launch.exchange(client, launch.code(patient, expiry="1h")).get_json()
    assert body["expires_in"] <= 3600
    with make.app.app_context():
        approval = db.session.query(Authorization).one()
        assert (
            3590
            <= (approval.expires_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)).total_seconds()
            <= 3600
        )
        db.session.execute(update(Authorization).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert client.get("/fhir/general/Patient/p1", headers=bearer(body["access_token"])).status_code == 401
    refused = launch.refresh(client, body["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


def test_an_access_token_never_outlives_the_approval(make, client, registered, patient):
    launch = Launch(registered.key, registered.secret)
    body = launch.exchange(client, launch.code(patient, expiry="1h")).get_json()
    with make.app.app_context():
        db.session.execute(update(Authorization).values(expires_at=utcnow() + timedelta(seconds=100)))
        db.session.commit()
    refreshed = launch.refresh(client, body["refresh_token"]).get_json()
    assert refreshed["expires_in"] <= 100


def test_online_access_ends_with_the_patients_session(make, client, registered, patient):
    launch = Launch(
        registered.key, registered.secret, scope="launch/patient online_access patient/Patient.rs"
    )
    body = launch.exchange(client, launch.code(patient)).get_json()
    assert "online_access" in body["scope"]
    body = launch.refresh(client, body["refresh_token"]).get_json()  # works while the session lasts
    from tests.oauth.smart_launch import CSRF

    csrf = CSRF.search(patient.get("/portal").get_data(as_text=True)).group(1)
    patient.post("/logout", data={"csrf_token": csrf})
    ended = launch.refresh(client, body["refresh_token"])
    assert ended.status_code == 400 and "session" in ended.get_json()["error_description"]


def test_a_public_client_may_refresh_naming_itself_not_at_all_a_confidential_one_may_not(
    make, client, registered, patient
):
    """RFC 6749 §6: a public client need not send client_id (fhirclient sends none)."""
    public = smart_app(make, public=True)
    launch = Launch(public.key, None)
    body = launch.exchange(client, launch.code(patient)).get_json()
    bare = client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert bare.status_code == 200, bare.get_json()
    confidential = Launch(registered.key, registered.secret)
    body = confidential.exchange(client, confidential.code(patient)).get_json()
    bare = client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert bare.status_code == 401 and bare.get_json()["error"] == "invalid_client"
    unknown = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "rt_nothing"})
    assert unknown.status_code == 401
    assert confidential.refresh(client, body["refresh_token"]).status_code == 200  # nothing was spent


def test_rfc7009_revoking_a_refresh_token_ends_the_approval(make, client, registered, patient):
    from tests.conftest import basic_auth

    launch = Launch(registered.key, registered.secret)
    body = launch.exchange(client, launch.code(patient)).get_json()
    auth = basic_auth(registered.key, registered.secret)
    seen = client.post("/oauth/introspect", data={"token": body["refresh_token"]}, headers=auth).get_json()
    assert seen["active"] is True and seen["token_type"] == "refresh_token" and seen["patient"] == "p1"

    other = smart_app(make)
    client.post(
        "/oauth/revoke", data={"token": body["refresh_token"]}, headers=basic_auth(other.key, other.secret)
    )
    assert client.get("/fhir/general/Patient/p1", headers=bearer(body["access_token"])).status_code == 200

    assert (
        client.post("/oauth/revoke", data={"token": body["refresh_token"]}, headers=auth).status_code == 200
    )
    assert client.get("/fhir/general/Patient/p1", headers=bearer(body["access_token"])).status_code == 401
    assert launch.refresh(client, body["refresh_token"]).get_json()["error"] == "invalid_grant"
    seen = client.post("/oauth/introspect", data={"token": body["refresh_token"]}, headers=auth).get_json()
    assert seen == {"active": False}


def test_a_public_client_revokes_its_refresh_token_naming_itself(make, client, patient):
    public = smart_app(make, public=True)
    launch = Launch(public.key, None)
    body = launch.exchange(client, launch.code(patient)).get_json()
    revoked = client.post("/oauth/revoke", data={"token": body["refresh_token"], "client_id": public.key})
    assert revoked.status_code == 200
    assert client.get("/fhir/general/Patient/p1", headers=bearer(body["access_token"])).status_code == 401


def test_a_patient_grants_reading_only(make, client, registered, patient):
    launch = Launch(
        registered.key, registered.secret, scope="launch/patient patient/Condition.cruds patient/*.write"
    )
    page = launch.consent(patient).get_data(as_text=True)
    assert "not change it" in page
    body = launch.exchange(client, launch.code(patient)).get_json()
    assert body["scope"] == "launch/patient"
    created = client.post(
        "/fhir/general/Condition",
        json={"resourceType": "Condition", "subject": {"reference": "Patient/p1"}},
        headers=bearer(body["access_token"]),
    )
    assert created.status_code == 403


def test_revoke_without_client_authentication_is_refused_not_a_crash(client):
    response = client.post("/oauth/revoke", data={"token": "x", "grant_type": "refresh_token"})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_revoking_through_an_already_used_refresh_token_ends_the_approval(client, registered, patient):
    from tests.conftest import basic_auth

    launch = Launch(registered.key, registered.secret)
    first = launch.exchange(client, launch.code(patient)).get_json()
    second = launch.refresh(client, first["refresh_token"]).get_json()
    auth = basic_auth(registered.key, registered.secret)
    assert (
        client.post("/oauth/revoke", data={"token": first["refresh_token"]}, headers=auth).status_code == 200
    )
    assert client.get("/fhir/general/Patient/p1", headers=bearer(second["access_token"])).status_code == 401


def test_redirect_uri_left_out_at_authorize_may_be_left_out_at_the_exchange(client, registered, patient):
    launch = Launch(registered.key, registered.secret, extra={"redirect_uri": None})
    assert launch.exchange(client, launch.code(patient), redirect_uri=None).status_code == 200
    again = Launch(registered.key, registered.secret, extra={"redirect_uri": None})
    assert again.exchange(client, again.code(patient)).status_code == 200  # or repeated as registered
    sent = Launch(registered.key, registered.secret)
    refused = sent.exchange(client, sent.code(patient), redirect_uri=None)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


def test_an_exchange_that_failed_is_no_connected_app(client, registered, patient):
    launch = Launch(registered.key, registered.secret)
    assert launch.exchange(client, launch.code(patient), code_verifier=pkce_pair()[0]).status_code == 400
    assert "Steps" not in patient.get("/portal/apps").get_data(as_text=True)
