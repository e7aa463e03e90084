"""Withdrawing an application's grant kills its tokens for good, even when the hospital grants
it again within the same second: tokens carry the serial of the grant they were issued under,
compared for equality, not their issue time against the grant's creation time."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

import oauth.operations
import oauth.tokens
from tests.conftest import BASE_URL, basic_auth, token_request

RESOURCE = f"{BASE_URL}/fhir/general"


@pytest.fixture
def frozen_second(monkeypatch) -> int:
    """Every token's ``iat`` and every grant's ``created_at`` fall in one and the same second."""
    now = int(time.time())
    monkeypatch.setattr(oauth.tokens, "epoch", lambda: now)
    monkeypatch.setattr(oauth.operations, "utcnow", lambda: datetime.fromtimestamp(now, UTC))
    return now


@pytest.fixture
def granted(make, sandbox):
    make.hospital("general")
    make.patient("general", "p1")
    admin = make.as_role("hospital-admin", "general")
    application = make.application()

    def grant() -> None:
        response = admin.put(
            f"/api/hospitals/general/apps/{application.key}", json={"permissions": ["system/*.rs"]}
        )
        assert response.status_code in (200, 201), response.get_json()

    def withdraw() -> None:
        assert admin.delete(f"/api/hospitals/general/apps/{application.key}").status_code == 204

    grant()
    return application, grant, withdraw


def _read(client, token: str) -> int:
    return client.get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"}).status_code


def _active(client, cred, token: str) -> bool:
    response = client.post(
        "/oauth/introspect", data={"token": token}, headers=basic_auth(cred.key, cred.secret)
    )
    return response.get_json()["active"]


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "view"])
def test_a_grant_withdrawn_and_made_again_in_the_same_second_does_not_revive_old_tokens(
    client, app, monkeypatch, granted, frozen_second, fast
):
    monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_FAST_PATH", fast)
    application, grant, withdraw = granted
    token_request(client, application, resource=RESOURCE)  # the client is cached for the fast path
    old = token_request(client, application, resource=RESOURCE).get_json()["access_token"]
    assert _read(client, old) == 200 and _active(client, application, old)

    withdraw()
    assert _read(client, old) == 401
    grant()
    assert _read(client, old) == 401
    assert not _active(client, application, old)

    new = token_request(client, application, resource=RESOURCE).get_json()["access_token"]
    assert _read(client, new) == 200 and _active(client, application, new)
    assert _read(client, old) == 401


def test_changing_a_grants_scope_keeps_its_tokens_within_the_new_scope(client, make, granted):
    """A changed grant is the same grant: its tokens live on, as far as the new scope covers them."""
    application, _, _ = granted
    token = token_request(client, application, resource=RESOURCE, scope="system/Patient.rs").get_json()
    other = token_request(client, application, resource=RESOURCE, scope="system/Observation.rs").get_json()
    admin = make.as_role("hospital-admin", "general")
    changed = admin.put(
        f"/api/hospitals/general/apps/{application.key}", json={"permissions": ["system/Patient.rs"]}
    )
    assert changed.status_code in (200, 201)
    assert _read(client, token["access_token"]) == 200
    assert not _active(client, application, other["access_token"])


def test_the_sandbox_reach_needs_no_grant_and_an_explicit_sandbox_grant_counts(client, make, sandbox):
    application = make.application()
    token = token_request(client, application, resource=f"{BASE_URL}/fhir/sandbox").get_json()["access_token"]
    assert _active(client, application, token)
    admin = make.as_role("hospital-admin", "sandbox")
    admin.put(f"/api/hospitals/sandbox/apps/{application.key}", json={"permissions": ["system/*.cruds"]})
    wider = token_request(
        client, application, resource=f"{BASE_URL}/fhir/sandbox", scope="system/Patient.cruds"
    )
    assert wider.status_code == 200
    assert _active(client, application, wider.get_json()["access_token"])
    assert not _active(client, application, token)  # issued under the test mode, not this grant
    admin.delete(f"/api/hospitals/sandbox/apps/{application.key}")
    assert not _active(client, application, wider.get_json()["access_token"])
