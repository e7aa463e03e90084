"""Hospital keys made with ``require_key_headers``: token plus x-api-key plus x-api-secret."""

from __future__ import annotations


def test_three_locks(client, make):
    make.hospital("general")
    make.patient("general", "p1")
    cred = make.api_key("general", permissions=["system/Patient.rs"], require_key_headers=True)
    bearer = {"Authorization": f"Bearer {cred.body['token']}"}
    missing = client.get("/fhir/general/Patient/p1", headers=bearer)
    wrong = client.get(
        "/fhir/general/Patient/p1", headers={**bearer, "x-api-key": cred.key, "x-api-secret": "hks_wrong"}
    )
    right = client.get(
        "/fhir/general/Patient/p1", headers={**bearer, "x-api-key": cred.key, "x-api-secret": cred.secret}
    )
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert cred.secret not in wrong.get_data(as_text=True)


def test_another_keys_headers_do_not_open_the_lock(client, make):
    make.hospital("general")
    make.patient("general", "p1")
    locked = make.api_key("general", permissions=["system/Patient.rs"], require_key_headers=True)
    other = make.api_key("general", permissions=["system/Patient.rs"])
    headers = {
        "Authorization": f"Bearer {locked.body['token']}",
        "x-api-key": other.key,
        "x-api-secret": other.secret,
    }
    assert client.get("/fhir/general/Patient/p1", headers=headers).status_code == 401


def test_keys_without_the_option_need_no_headers(client, make):
    make.hospital("general")
    make.patient("general", "p1")
    cred = make.api_key("general", permissions=["system/Patient.rs"])
    response = client.get(
        "/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {cred.body['token']}"}
    )
    assert response.status_code == 200
