"""RFC 7662 introspection, RFC 7009 revocation, and credentials that die at once."""

from __future__ import annotations

import pytest

from tests.conftest import BASE_URL, basic_auth, token_request


def introspect(client, cred, token: str) -> dict:
    response = client.post(
        "/oauth/introspect", data={"token": token}, headers=basic_auth(cred.key, cred.secret)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_introspection_of_a_live_token(client, make):
    make.hospital("general")
    cred = make.api_key("general")
    token = token_request(client, cred).get_json()["access_token"]
    body = introspect(client, cred, token)
    assert body["active"] is True
    assert body["client_id"] == body["sub"] == cred.key
    assert body["aud"] == f"{BASE_URL}/fhir/general"
    assert body["scope"] == "system/Patient.rs"
    assert body["token_type"] == "Bearer"
    assert {"exp", "iat", "iss", "jti"} <= set(body)


def test_introspection_of_garbage_is_inactive(client, make):
    make.hospital("general")
    cred = make.api_key("general")
    for token in ("garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "x" * 20000):
        assert introspect(client, cred, token) == {"active": False}


def test_introspection_requires_client_authentication(client, make):
    make.hospital("general")
    cred = make.api_key("general")
    response = client.post("/oauth/introspect", data={"token": cred.body["token"]})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_introspection_without_token_is_invalid_request(client, make):
    make.hospital("general")
    cred = make.api_key("general")
    response = client.post("/oauth/introspect", data={}, headers=basic_auth(cred.key, cred.secret))
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_other_hospitals_cannot_introspect_a_token(client, make):
    make.hospital("general")
    make.hospital("other")
    victim = make.api_key("general")
    attacker = make.api_key("other")
    assert introspect(client, attacker, victim.body["token"]) == {"active": False}


def test_patient_credential_cannot_introspect_another_clients_token(client, make):
    make.hospital("general")
    key = make.api_key("general")
    patient = make.patient_credential("general")
    assert introspect(client, patient, key.body["token"]) == {"active": False}


def test_deleting_an_api_key_deactivates_its_tokens_at_once(client, make):
    make.hospital("general")
    observer = make.api_key("general")
    cred = make.api_key("general")
    issued = [cred.body["token"], token_request(client, cred).get_json()["access_token"]]
    assert all(introspect(client, observer, t)["active"] for t in issued)

    admin = make.as_role("hospital-admin", "general")
    assert admin.delete(f"/api/hospitals/general/api-keys/{cred.key}").status_code == 204

    assert all(introspect(client, observer, t) == {"active": False} for t in issued)
    assert token_request(client, cred).status_code == 401


def test_deleting_a_patient_credential_deactivates_its_tokens_at_once(client, make):
    make.hospital("general")
    observer = make.api_key("general")
    patient_client = make.as_role("patient", "general", "p1")
    created = patient_client.post("/api/me/credentials", json={"name": "Health App"}).get_json()
    cred = type(observer)(created["key"], created["secret"], created)
    token = token_request(client, cred).get_json()["access_token"]
    assert introspect(client, observer, token)["active"] is True
    assert introspect(client, cred, token)["active"] is True

    assert patient_client.delete(f"/api/me/credentials/{cred.key}").status_code == 204

    assert introspect(client, observer, token) == {"active": False}
    assert token_request(client, cred).status_code == 401


def test_rotating_an_application_secret_deactivates_earlier_tokens_at_once(client, make, sandbox):
    developer = make.as_role("developer")
    cred = make.application(developer)
    old_token = token_request(client, cred).get_json()["access_token"]
    assert introspect(client, cred, old_token)["active"] is True

    rotated = developer.post(f"/api/apps/{cred.key}/secret")
    assert rotated.status_code == 200
    new_secret = rotated.get_json()["client_secret"]
    assert new_secret != cred.secret
    new_cred = type(cred)(cred.key, new_secret, {})

    assert introspect(client, new_cred, old_token) == {"active": False}
    assert token_request(client, cred).status_code == 401
    new_token = token_request(client, new_cred).get_json()["access_token"]
    assert introspect(client, new_cred, new_token)["active"] is True


def test_withdrawing_a_hospital_grant_deactivates_tokens_for_that_hospital(client, make, sandbox):
    make.hospital("general")
    cred = make.application()
    admin = make.as_role("hospital-admin", "general")
    admin.put(f"/api/hospitals/general/apps/{cred.key}", json={"permissions": ["system/Patient.r"]})
    general = token_request(client, cred, resource=f"{BASE_URL}/fhir/general").get_json()["access_token"]
    sandbox_token = token_request(client, cred, resource=f"{BASE_URL}/fhir/sandbox").get_json()[
        "access_token"
    ]

    assert admin.delete(f"/api/hospitals/general/apps/{cred.key}").status_code == 204

    assert introspect(client, cred, general) == {"active": False}
    assert introspect(client, cred, sandbox_token)["active"] is True


def test_revocation_kills_one_token_only(client, make):
    make.hospital("general")
    cred = make.api_key("general")
    first = token_request(client, cred).get_json()["access_token"]
    second = token_request(client, cred).get_json()["access_token"]
    response = client.post("/oauth/revoke", data={"token": first}, headers=basic_auth(cred.key, cred.secret))
    assert response.status_code == 200
    assert introspect(client, cred, first) == {"active": False}
    assert introspect(client, cred, second)["active"] is True


def test_revoking_an_unknown_token_succeeds_quietly(client, make):
    """RFC 7009 §2.2: an invalid token is not an error."""
    make.hospital("general")
    cred = make.api_key("general")
    response = client.post(
        "/oauth/revoke", data={"token": "nonsense"}, headers=basic_auth(cred.key, cred.secret)
    )
    assert response.status_code == 200


def test_a_client_cannot_revoke_another_clients_token(client, make):
    make.hospital("general")
    victim = make.api_key("general")
    attacker = make.api_key("general")
    token = victim.body["token"]
    response = client.post(
        "/oauth/revoke", data={"token": token}, headers=basic_auth(attacker.key, attacker.secret)
    )
    assert response.status_code == 400
    assert introspect(client, victim, token)["active"] is True


def test_narrowing_a_grant_deactivates_wider_tokens(client, make, sandbox):
    make.hospital("general")
    cred = make.application()
    admin = make.as_role("hospital-admin", "general")
    admin.put(f"/api/hospitals/general/apps/{cred.key}", json={"permissions": ["system/*.cruds"]})
    wide = token_request(client, cred, resource=f"{BASE_URL}/fhir/general").get_json()["access_token"]
    narrow = token_request(client, cred, resource=f"{BASE_URL}/fhir/general", scope="system/Patient.r")
    narrow = narrow.get_json()["access_token"]
    admin.put(f"/api/hospitals/general/apps/{cred.key}", json={"permissions": ["system/Patient.r"]})
    assert introspect(client, cred, wide) == {"active": False}
    assert introspect(client, cred, narrow)["active"] is True


def test_granting_again_does_not_revive_tokens_of_a_withdrawn_grant(client, make, sandbox, app, ctx):
    from datetime import timedelta

    from app.extensions import db
    from oauth import AppGrant

    make.hospital("general")
    cred = make.application()
    admin = make.as_role("hospital-admin", "general")
    admin.put(f"/api/hospitals/general/apps/{cred.key}", json={"permissions": ["system/*.rs"]})
    # Issued a while before the grant is withdrawn and given again.
    grant = db.session.get(AppGrant, (cred.key, "general"))
    grant.created_at = grant.created_at - timedelta(seconds=120)
    db.session.commit()
    old = token_request(client, cred, resource=f"{BASE_URL}/fhir/general").get_json()["access_token"]
    admin.delete(f"/api/hospitals/general/apps/{cred.key}")
    import time

    time.sleep(1.1)  # the new grant starts in a later second than the token's iat
    admin.put(f"/api/hospitals/general/apps/{cred.key}", json={"permissions": ["system/*.rs"]})
    assert introspect(client, cred, old) == {"active": False}


@pytest.mark.parametrize("hint", ["weird", "refresh_token"])
def test_a_token_type_hint_that_does_not_fit_is_ignored(client, make, hint):
    """RFC 7662 §2.1 and RFC 7009 §2.1: a hint that finds nothing widens the search; revocation
    of an access token under an unknown or wrong hint still revokes it."""
    make.hospital("general")
    cred = make.api_key("general")
    token = token_request(client, cred).get_json()["access_token"]
    response = client.post(
        "/oauth/introspect",
        data={"token": token, "token_type_hint": hint},
        headers=basic_auth(cred.key, cred.secret),
    )
    assert response.status_code == 200 and response.get_json()["active"] is True
    response = client.post(
        "/oauth/revoke",
        data={"token": token, "token_type_hint": hint},
        headers=basic_auth(cred.key, cred.secret),
    )
    assert response.status_code == 200
    assert introspect(client, cred, token) == {"active": False}
