"""A token's signature is verified once per worker, and only while its key is still ours."""

from __future__ import annotations

from sqlalchemy import delete

import oauth.tokens
from app.extensions import db
from oauth.keys import keyring
from oauth.models import SigningKey
from tests.conftest import token_request


def _bearer(client, make) -> dict:
    make.hospital("general")
    make.patient("general", "p1")
    response = token_request(client, make.api_key("general"))
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def _count_verifications(monkeypatch) -> list[str]:
    calls = []
    real = oauth.tokens.verify

    def counting(token, *args, **kwargs):
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(oauth.tokens, "verify", counting)
    return calls


def test_a_token_used_again_is_not_verified_again(client, make, monkeypatch):
    headers = _bearer(client, make)
    calls = _count_verifications(monkeypatch)
    for _ in range(3):
        assert client.get("/fhir/general/Patient/p1", headers=headers).status_code == 200
    assert len(calls) == 1


def test_a_remembered_token_is_refused_once_its_key_is_gone(app, client, make):
    headers = _bearer(client, make)
    assert client.get("/fhir/general/Patient/p1", headers=headers).status_code == 200
    with app.app_context():
        db.session.execute(delete(SigningKey))
        db.session.commit()
        keyring().invalidate()
    response = client.get("/fhir/general/Patient/p1", headers=headers)
    assert response.status_code == 401


def test_a_changed_signature_is_verified_and_refused(client, make):
    headers = _bearer(client, make)
    assert client.get("/fhir/general/Patient/p1", headers=headers).status_code == 200
    token = headers["Authorization"].removeprefix("Bearer ")
    # A character well inside the signature: the last one also carries unused padding bits.
    changed = "A" if token[-10] != "A" else "B"
    forged = {"Authorization": f"Bearer {token[:-10]}{changed}{token[-9:]}"}
    assert client.get("/fhir/general/Patient/p1", headers=forged).status_code == 401
