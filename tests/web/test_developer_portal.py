"""The developer portal: applications, secrets shown once, rotation, deletion, reach."""

from __future__ import annotations

import html
import json
import re

import pytest

from tests.oauth.signing import ClientKey, assertion_form
from tests.web.conftest import hidden


@pytest.fixture
def developer(app, make, browser_login):
    make.hospital("sandbox")
    make.hospital("general")
    return browser_login(make.user("developer"))


def add_app(client, name="Scheduler", secret="", **keys):
    form = client.get("/developer/apps/new")
    data = {
        "name": name,
        "client_secret": secret,
        "csrf_token": hidden(form.data, "csrf_token"),
        "form_id": hidden(form.data, "form_id"),
        **keys,
    }
    return client.post("/developer/apps", data=data), data


def shown(page: bytes, field: str) -> str:
    return re.search(rf'id="{field}" value="([^"]+)"'.encode(), page).group(1).decode()


def test_an_application_is_added_once_and_its_secret_shown_once(developer):
    created, sent = add_app(developer)
    assert created.status_code == 200
    client_id, secret = shown(created.data, "new-client-id"), shown(created.data, "new-secret")
    assert client_id.startswith("app_") and secret.startswith("apps_")
    again = developer.post("/developer/apps", data=sent)
    assert again.status_code == 409 and secret.encode() not in again.data
    assert developer.get("/developer").data.count(f'href="/developer/apps/{client_id}"'.encode()) == 1
    details = developer.get(f"/developer/apps/{client_id}")
    assert details.data.index(b"test data") < details.data.index(b"Scopes")  # the sandbox, first
    assert secret.encode() not in details.data


def test_a_chosen_secret_must_be_long_enough(developer):
    response, _ = add_app(developer, secret="short")
    assert response.status_code == 400 and b"32 to 512 characters" in response.data
    chosen = "s" * 40
    created, _ = add_app(developer, secret=chosen)
    assert shown(created.data, "new-secret") == chosen


def test_rotation_shows_a_new_secret_once_and_deletion_asks(app, developer):
    created, _ = add_app(developer)
    client_id, old = shown(created.data, "new-client-id"), shown(created.data, "new-secret")
    details = developer.get(f"/developer/apps/{client_id}")
    form = {"csrf_token": hidden(details.data, "csrf_token"), "form_id": hidden(details.data, "form_id")}
    rotated = developer.post(f"/developer/apps/{client_id}/secret", data=form)
    new = shown(rotated.data, "new-secret")
    assert new != old and b"old secret no longer works" in rotated.data
    assert developer.post(f"/developer/apps/{client_id}/secret", data=form).status_code == 409
    confirm = developer.get(f"/developer/apps/{client_id}/delete")
    done = developer.post(
        f"/developer/apps/{client_id}/delete", data={"csrf_token": hidden(confirm.data, "csrf_token")}
    )
    assert done.status_code == 303 and b"was deleted" in developer.get(done.headers["Location"]).data


def test_a_developer_cannot_open_another_developers_application(make, developer, browser_login):
    created, _ = add_app(developer)
    client_id = shown(created.data, "new-client-id")
    other = browser_login(make.user("developer"))
    for path in (f"/developer/apps/{client_id}", f"/developer/apps/{client_id}/delete"):
        assert other.get(path).status_code == 404, path
    assert client_id.encode() not in other.get("/developer").data


def test_an_application_with_public_keys_gets_no_secret(client, developer):
    signer = ClientKey("ES384")
    created, _ = add_app(developer, jwks=json.dumps(signer.jwks()))
    assert created.status_code == 303
    page = developer.get(created.headers["Location"])
    client_id = re.search(rb"/developer/apps/(app_[A-Za-z0-9_-]+)/keys", page.data).group(1).decode()
    text = html.unescape(page.data.decode())
    assert "no secret was made" in text and "private_key_jwt (signed assertions)" in text
    assert signer.public_jwk["x"] in text and "client_assertion=YOUR_SIGNED_JWT" in text
    token = client.post("/oauth/token", data=assertion_form(signer.assertion(client_id)))
    assert token.status_code == 200, token.get_json()
    # The developer, not the caller, reads the details of the last refusal.
    client.post("/oauth/token", data=assertion_form(signer.assertion(client_id, aud="https://wrong.example")))
    assert "aud must be the token endpoint URL" in developer.get(f"/developer/apps/{client_id}").data.decode()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"jwks": "{not json"}, b"not JSON"),
        ({"jwks_uri": "ftp://keys.example/jwks"}, b"must use https"),
        ({"jwks": '{"keys": []}', "jwks_uri": "https://keys.example/jwks"}, b"not both"),
        ({"client_secret": "s" * 40, "jwks_uri": "https://keys.example/jwks"}, b"not both"),
    ],
)
def test_unusable_public_keys_are_explained_on_the_form(developer, fields, message):
    response, _ = add_app(developer, **fields)
    assert response.status_code == 400 and message in response.data


def test_a_secret_application_switches_to_a_jwks_url_and_back(client, developer):
    created, _ = add_app(developer)
    client_id = shown(created.data, "new-client-id")
    details = developer.get(f"/developer/apps/{client_id}")
    csrf = hidden(details.data, "csrf_token")
    refused = developer.post(f"/developer/apps/{client_id}/keys", data={"csrf_token": csrf})
    assert refused.status_code == 400 and b"Paste a JWK Set or enter a JWKS URL" in refused.data
    saved = developer.post(
        f"/developer/apps/{client_id}/keys",
        data={"csrf_token": csrf, "jwks_uri": "https://keys.example/jwks.json"},
    )
    assert saved.status_code == 303
    page = developer.get(saved.headers["Location"]).data.decode()
    assert "Public keys saved" in page and "https://keys.example/jwks.json" in page
    form = {"csrf_token": csrf, "form_id": hidden(page, "form_id")}
    back = developer.post(f"/developer/apps/{client_id}/secret", data=form)
    secret = shown(back.data, "new-secret")
    assert (
        client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        ).status_code
        == 200
    )


def test_a_request_message_with_control_characters_is_refused(make, developer):
    make.hospital("clinic")
    mine = make.application(developer)
    page = developer.get(f"/developer/apps/{mine.key}")
    form = {"csrf_token": hidden(page.data, "csrf_token"), "hospital": "clinic", "perm:Patient:r": "on"}
    refused = developer.post(
        f"/developer/apps/{mine.key}/access-requests", data={**form, "message": "hi\x00"}
    )
    assert refused.status_code == 400 and b"control characters" in refused.data


def test_a_chosen_secret_with_characters_clients_send_wrong_is_refused(developer):
    """A client that does not form-encode Basic credentials would send "+" or "%" wrong."""
    response, _ = add_app(developer, secret="plus+and%percent" + "s" * 30)
    assert response.status_code == 400 and b"letters, digits and - . _ ~" in response.data


def test_a_public_client_registered_by_the_api_reads_as_one_in_the_portal(developer):
    created = developer.post(
        "/api/apps",
        json={
            "client_name": "Browser app",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["https://app.example/cb"],
        },
        headers={"Origin": "http://localhost"},
    )
    assert created.status_code == 201, created.get_json()
    page = html.unescape(developer.get(f"/developer/apps/{created.get_json()['client_id']}").data.decode())
    assert "a public client, which proves itself with PKCE" in page
    assert "YOUR_SECRET" not in page and "Rotate secret" not in page
    assert "Generate a client secret" in page
