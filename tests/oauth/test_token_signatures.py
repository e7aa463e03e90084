"""ECDSA malleability: every access token has exactly one spelling.

If ``(r, s)`` is a valid ES256 signature, so is ``(r, n - s)``; a malleated copy of a token is
a different token string with the same claims (a new key in every cache and deny-list keyed by
the string). We issue low-S signatures only and refuse a high S, and the signature's base64url
must be canonical.
"""

from __future__ import annotations

import base64

import pytest

from tests.conftest import BASE_URL, basic_auth, token_request

# The order of P-256 (SEC 2 §2.4.2), written out here rather than taken from the code under test.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signature(token: str) -> tuple[int, int]:
    raw = base64.urlsafe_b64decode(token.split(".")[2] + "==")
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def _with_signature(token: str, r: int, s: int) -> str:
    head, payload, _ = token.split(".")
    return f"{head}.{payload}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.fixture
def key(make):
    make.hospital("general")
    make.patient("general", "p1")
    return make.api_key("general", permissions=["system/Patient.rs"])


def test_every_token_we_issue_has_a_low_s(client, app, key, monkeypatch):
    tokens = [key.body["token"]]
    for fast in (True, False):
        monkeypatch.setitem(app.config, "FHIRGATE_TOKEN_FAST_PATH", fast)
        tokens += [token_request(client, key).get_json()["access_token"] for _ in range(24)]
    assert len(set(tokens)) == 49
    assert all(_signature(token)[1] <= P256_ORDER // 2 for token in tokens)  # by chance: 2^-49


def _refused(client, key, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/fhir/general/Patient/p1", "/fhir/general/Patient?_id=p1"):  # read fast path, view
        response = client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.get_data(as_text=True)[:200])
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    introspected = client.post(
        "/oauth/introspect", data={"token": token}, headers=basic_auth(key.key, key.secret)
    )
    assert introspected.get_json() == {"active": False}


def test_a_malleated_copy_with_the_high_s_is_refused(client, key):
    token = token_request(client, key).get_json()["access_token"]
    assert (
        client.get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    r, s = _signature(token)
    _refused(client, key, _with_signature(token, r, P256_ORDER - s))


def test_another_base64_spelling_of_the_signature_is_refused(client, key):
    token = token_request(client, key).get_json()["access_token"]
    head, payload, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 64 bytes are 86 characters; the last one carries 2 bits and 4 unused ones.
    last = alphabet.index(signature[-1])
    stray = alphabet[last | 1] if last | 1 != last else alphabet[last | 2]
    for copy in (
        signature[:-1] + stray,
        signature.replace("-", "+").replace("_", "/"),
        signature[:10] + "!!!!" + signature[10:],
    ):
        if copy != signature:
            _refused(client, key, f"{head}.{payload}.{copy}")


def test_the_issued_token_still_works_at_both_ends(client, key):
    token = token_request(client, key, resource=f"{BASE_URL}/fhir/general").get_json()["access_token"]
    assert (
        client.get("/fhir/general/Patient/p1", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    introspected = client.post(
        "/oauth/introspect", data={"token": token}, headers=basic_auth(key.key, key.secret)
    )
    assert introspected.get_json()["active"] is True
