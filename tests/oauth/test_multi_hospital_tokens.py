"""An application granted at several hospitals that names no ``resource`` gets one token for all
of them (``aud`` an array, RFC 9068 §3), which each hospital judges by its own grant alone: its
own scopes, its own grant serial. Naming a ``resource`` still narrows the token to one."""

from __future__ import annotations

import pytest

import oauth.tokens
from app.extensions import db
from fhir.storage.sql import SqlRepository
from oauth.jws import sign
from oauth.keys import keyring
from tests.conftest import BASE_URL, basic_auth, token_request
from tests.oauth.test_token_flows import decode_with_jwks

GENERAL, NORTH = f"{BASE_URL}/fhir/general", f"{BASE_URL}/fhir/north"
AT_GENERAL = ["system/Patient.rs", "system/Observation.rs"]
AT_NORTH = ["system/Patient.rs"]


@pytest.fixture
def world(make, app):
    """Hospitals general, north and other, each with Patient/p1 and Observation/o1; an
    application granted at general (Patient and Observation) and at north (Patient only)."""
    admins = {}
    for hospital in ("general", "north", "other"):
        make.hospital(hospital)
        make.patient(hospital, "p1")
        with app.app_context():
            observation = {
                "resourceType": "Observation",
                "id": "o1",
                "status": "final",
                "code": {"text": "x"},
            }
            SqlRepository(db.session, hospital).update("Observation", "o1", observation)
            db.session.commit()
        admins[hospital] = make.as_role("hospital-admin", hospital)
    application = make.application()

    def grant(hospital: str, permissions: list[str]) -> None:
        response = admins[hospital].put(
            f"/api/hospitals/{hospital}/apps/{application.key}", json={"permissions": permissions}
        )
        assert response.status_code in (200, 201), response.get_json()

    def withdraw(hospital: str) -> None:
        assert admins[hospital].delete(f"/api/hospitals/{hospital}/apps/{application.key}").status_code == 204

    grant("general", AT_GENERAL)
    grant("north", AT_NORTH)
    return {"app": application, "grant": grant, "withdraw": withdraw}


@pytest.fixture(params=[True, False], ids=["fast path", "view"])
def token_path(request, app, monkeypatch) -> bool:
    """The token endpoint's fast path on or off (the first request caches the client for it)."""
    monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_FAST_PATH", request.param)
    return request.param


def token_for(client, world, **form) -> dict:
    token_request(client, world["app"], **form)  # caches the client: the next may take the fast path
    response = token_request(client, world["app"], **form)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def read(client, token: str, path: str):
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def introspect(client, cred, token: str) -> dict:
    response = client.post(
        "/oauth/introspect", data={"token": token}, headers=basic_auth(cred.key, cred.secret)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_an_application_granted_at_two_hospitals_gets_one_token_for_both(client, world, token_path):
    body = token_for(client, world)
    claims = decode_with_jwks(client, body["access_token"]).claims
    assert claims["aud"] == [GENERAL, NORTH]
    serials = {h: part.pop("grant") for h, part in claims["hospitals"].items()}
    assert claims["hospitals"] == {
        "general": {"scope": " ".join(AT_GENERAL)},
        "north": {"scope": "system/Patient.rs"},
    }
    assert all(serials.values()) and serials["general"] != serials["north"]
    assert "grant" not in claims
    # The token's scope, in the claim and the response: all it holds, at one hospital or another.
    assert body["scope"] == claims["scope"] == "system/Patient.rs system/Observation.rs"


def test_the_token_reads_at_each_hospital_with_that_hospitals_scopes_only(client, world, app, monkeypatch):
    token = token_for(client, world)["access_token"]
    narrowed = token_for(client, world, resource=NORTH)["access_token"]
    for fast in (True, False, True):  # the read fast path (PostgreSQL) and the view alike
        monkeypatch.setitem(app.config, "FHIRGATE_READ_FAST_PATH", fast)
        assert read(client, token, "/fhir/general/Patient/p1").status_code == 200
        assert read(client, token, "/fhir/general/Observation/o1").status_code == 200
        assert read(client, token, "/fhir/north/Patient/p1").status_code == 200
        # Observation is granted at general only: north refuses it as it refuses a token of its own.
        refused = read(client, token, "/fhir/north/Observation/o1")
        as_today = read(client, narrowed, "/fhir/north/Observation/o1")
        assert refused.status_code == as_today.status_code == 403
        assert refused.headers["WWW-Authenticate"] == as_today.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
        assert refused.get_json()["issue"] == as_today.get_json()["issue"]


def test_withdrawing_the_grant_at_one_hospital_ends_the_token_there_only(client, world):
    token = token_for(client, world)["access_token"]
    world["withdraw"]("general")
    refused = read(client, token, "/fhir/general/Patient/p1")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith('Bearer realm="fhirgate", error="invalid_token"')
    assert read(client, token, "/fhir/north/Patient/p1").status_code == 200
    # Granted again (a new grant, a new serial): the old token stays dead there.
    world["grant"]("general", AT_GENERAL)
    assert read(client, token, "/fhir/general/Patient/p1").status_code == 401
    assert read(client, token, "/fhir/north/Patient/p1").status_code == 200
    assert (
        read(client, token_for(client, world)["access_token"], "/fhir/general/Patient/p1").status_code == 200
    )


def test_narrowing_the_grant_at_one_hospital_ends_the_token_there_only(client, world):
    token = token_for(client, world)["access_token"]
    world["grant"]("general", ["system/Patient.rs"])  # the token carries Observation there
    assert read(client, token, "/fhir/general/Patient/p1").status_code == 401
    assert read(client, token, "/fhir/north/Patient/p1").status_code == 200


def test_naming_a_resource_narrows_the_token_to_that_hospital(client, world, token_path):
    everywhere = token_for(client, world)["access_token"]
    assert read(client, everywhere, "/fhir/north/Patient/p1").status_code == 200
    body = token_for(client, world, resource=GENERAL)
    claims = decode_with_jwks(client, body["access_token"]).claims
    assert claims["aud"] == GENERAL and "hospitals" not in claims and claims["grant"]
    assert body["scope"] == claims["scope"] == " ".join(AT_GENERAL)
    assert read(client, body["access_token"], "/fhir/general/Observation/o1").status_code == 200
    # From the attacker's side: a token minted for general is no key to north, which granted the app too.
    refused = read(client, body["access_token"], "/fhir/north/Patient/p1")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith('Bearer realm="fhirgate", error="invalid_token"')


def test_a_scope_parameter_is_spread_over_the_hospitals_that_grant_it(client, world, token_path):
    asked = "system/Observation.r system/Patient.r system/Observation.r"
    body = token_for(client, world, scope=asked)
    claims = decode_with_jwks(client, body["access_token"]).claims
    assert claims["aud"] == [GENERAL, NORTH]
    assert {h: part["scope"] for h, part in claims["hospitals"].items()} == {
        "general": "system/Observation.r system/Patient.r",
        "north": "system/Patient.r",
    }
    assert body["scope"] == claims["scope"] == "system/Observation.r system/Patient.r"
    token = body["access_token"]
    assert read(client, token, "/fhir/general/Observation/o1").status_code == 200
    assert read(client, token, "/fhir/north/Patient/p1").status_code == 200
    assert read(client, token, "/fhir/north/Observation/o1").status_code == 403


def test_a_scope_only_one_hospital_grants_makes_a_token_for_that_hospital(client, world, token_path):
    body = token_for(client, world, scope="system/Observation.rs")
    claims = decode_with_jwks(client, body["access_token"]).claims
    assert claims["aud"] == GENERAL and "hospitals" not in claims
    assert body["scope"] == claims["scope"] == "system/Observation.rs"
    assert read(client, body["access_token"], "/fhir/north/Patient/p1").status_code == 401


@pytest.mark.parametrize(
    "scope", ["system/Encounter.rs", "system/Patient.rs system/Encounter.rs", "system/Observation.cruds"]
)
def test_a_scope_no_hospital_grants_is_invalid_scope(client, world, token_path, scope):
    token_for(client, world)  # the client is cached: the fast path sees the request and leaves it
    for _ in range(2):
        response = token_request(client, world["app"], scope=scope)
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_scope"


def test_the_token_cannot_reach_a_hospital_that_did_not_grant_the_application(client, world):
    token = token_for(client, world)["access_token"]
    for path in ("/fhir/other/Patient/p1", "/fhir/other/Observation/o1", "/fhir/other/Patient"):
        refused = read(client, token, path)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith(
            'Bearer realm="fhirgate", error="invalid_token"'
        )
    # Nor does a grant made there later let it in: it was not issued for that hospital.
    world["grant"]("other", ["system/*.rs"])
    assert read(client, token, "/fhir/other/Patient/p1").status_code == 401
    assert read(client, token_for(client, world)["access_token"], "/fhir/other/Patient/p1").status_code == 200


def test_introspection_describes_the_token_where_it_is_still_valid(client, world):
    token = token_for(client, world)["access_token"]
    body = introspect(client, world["app"], token)
    assert body["active"] is True
    assert body["aud"] == [GENERAL, NORTH]
    assert body["scope"] == "system/Patient.rs system/Observation.rs"
    assert {h: part["scope"] for h, part in body["hospitals"].items()} == {
        "general": " ".join(AT_GENERAL),
        "north": "system/Patient.rs",
    }
    world["withdraw"]("general")
    body = introspect(client, world["app"], token)
    assert body["active"] is True
    assert (
        body["aud"] == [NORTH]
        and body["scope"] == "system/Patient.rs"
        and list(body["hospitals"]) == ["north"]
    )
    world["withdraw"]("north")
    assert introspect(client, world["app"], token) == {"active": False}


def test_a_hospital_key_introspecting_sees_its_own_hospitals_part_only(client, world, make):
    token = token_for(client, world)["access_token"]
    north_key = make.api_key("north")
    body = introspect(client, north_key, token)
    assert body["active"] is True
    assert (
        body["aud"] == [NORTH]
        and body["scope"] == "system/Patient.rs"
        and list(body["hospitals"]) == ["north"]
    )
    # Another hospital's key learns nothing; north's key nothing once north withdrew its grant.
    assert introspect(client, make.api_key("other"), token) == {"active": False}
    world["withdraw"]("north")
    assert introspect(client, north_key, token) == {"active": False}
    assert introspect(client, world["app"], token)["aud"] == [GENERAL]


def test_revoking_the_token_ends_it_at_every_hospital(client, world):
    token = token_for(client, world)["access_token"]
    cred = world["app"]
    revoked = client.post("/oauth/revoke", data={"token": token}, headers=basic_auth(cred.key, cred.secret))
    assert revoked.status_code == 200
    assert read(client, token, "/fhir/general/Patient/p1").status_code == 401
    assert read(client, token, "/fhir/north/Patient/p1").status_code == 401
    assert introspect(client, cred, token) == {"active": False}


def test_a_token_too_large_for_a_header_is_refused_with_invalid_target(
    client, world, token_path, monkeypatch
):
    monkeypatch.setattr(oauth.tokens, "MAX_TOKEN_LENGTH", 500)
    for _ in range(2):
        response = token_request(client, world["app"])
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_target"
    assert token_request(client, world["app"], resource=GENERAL).status_code == 200  # one hospital: as before


def test_a_token_whose_hospitals_claim_disagrees_with_its_audience_is_refused(client, world, app):
    """Only this server signs tokens, but a token's parts must match its audiences all the same."""
    issued = decode_with_jwks(client, token_for(client, world)["access_token"]).claims
    with app.app_context():
        kid, key = keyring().signing_key()
        header = {"alg": "ES256", "typ": "at+jwt", "kid": kid}
        north_only = {**issued, "hospitals": {"north": issued["hospitals"]["north"]}}
        other_added = {**issued, "hospitals": {**issued["hospitals"], "other": {"scope": "system/*.rs"}}}
        one_aud = {**issued, "aud": [GENERAL]}
        forged = [sign(key, header, claims) for claims in (north_only, other_added, one_aud)]
    for token in forged:
        for hospital in ("general", "north", "other"):
            assert read(client, token, f"/fhir/{hospital}/Patient/p1").status_code == 401


def test_the_read_fast_path_judges_the_token_by_each_hospitals_part(client, world, app, monkeypatch):
    """PostgreSQL: the common read, answered beneath Flask, takes each hospital's part too."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("direct reads (and the read fast path) are PostgreSQL's")
    token = token_for(client, world)["access_token"]
    views = []
    view = app.view_functions["fhir.read"]
    monkeypatch.setitem(app.view_functions, "fhir.read", lambda **kw: views.append(kw) or view(**kw))
    monkeypatch.setitem(app.config, "FHIRGATE_READ_FAST_PATH", True)
    for hospital in ("general", "north"):
        read(client, token, f"/fhir/{hospital}/Patient/p1")  # the worker learns the hospital
    views.clear()
    assert read(client, token, "/fhir/general/Observation/o1").status_code == 200
    assert read(client, token, "/fhir/north/Patient/p1").status_code == 200
    assert views == []
    assert read(client, token, "/fhir/north/Observation/o1").status_code == 403  # the view's answer
    assert len(views) == 1
    world["withdraw"]("general")
    assert read(client, token, "/fhir/general/Patient/p1").status_code == 401
    assert read(client, token, "/fhir/north/Patient/p1").status_code == 200
