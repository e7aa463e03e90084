"""The token endpoint's error matrix: RFC 6749 §5.2 status and code, never a 500."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import User
from oauth import create_application
from tests.conftest import BASE_URL, basic_auth, token_request


@pytest.fixture
def key(make):
    make.hospital("general")
    return make.api_key("general")


def assert_oauth_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["error"] == error
    return body


def test_wrong_secret_is_invalid_client_with_basic_challenge(client, key):
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic_auth(key.key, "hks_wrong")
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_wrong_secret_by_post_is_invalid_client_with_a_plain_basic_challenge(client, key):
    """A 401 always carries a challenge (RFC 9110 §15.5.2); the error goes with Basic only."""
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": key.key, "client_secret": "nope"},
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"] == 'Basic realm="fhirgate"'


def test_unknown_client_is_indistinguishable_from_a_wrong_secret(client, key):
    unknown = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic_auth("hk_nobody", "x")
    )
    wrong = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic_auth(key.key, "x")
    )
    assert assert_oauth_error(unknown, 401, "invalid_client") == assert_oauth_error(
        wrong, 401, "invalid_client"
    )


def test_missing_grant_type_is_invalid_request(client, key):
    response = client.post("/oauth/token", data={}, headers=basic_auth(key.key, key.secret))
    assert_oauth_error(response, 400, "invalid_request")


def test_unsupported_grant_type(client, key):
    response = client.post(
        "/oauth/token", data={"grant_type": "password"}, headers=basic_auth(key.key, key.secret)
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_hostile_grant_type_is_not_echoed_and_does_not_crash(client, key):
    response = client.post(
        "/oauth/token", data={"grant_type": 'x"\\<script>' * 50}, headers=basic_auth(key.key, key.secret)
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")
    assert "script" not in response.get_data(as_text=True)


def test_scope_beyond_the_grant_is_invalid_scope(client, key):
    response = token_request(client, key, scope="system/Patient.cruds")
    assert_oauth_error(response, 400, "invalid_scope")


def test_scope_of_another_type_is_invalid_scope(client, key):
    assert_oauth_error(token_request(client, key, scope="system/Observation.r"), 400, "invalid_scope")


def test_malformed_scope_is_invalid_scope(client, key):
    assert_oauth_error(token_request(client, key, scope="openid profile"), 400, "invalid_scope")
    assert_oauth_error(token_request(client, key, scope=" "), 400, "invalid_scope")


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!notbase64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b":only-secret").decode(),
        "Basic " + base64.b64encode(b"only-id:").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
        "Basic " + base64.b64encode(("a" * 5000 + ":b").encode()).decode(),
        "Bearer sometoken",
        "Digest username=x",
    ],
)
def test_malformed_basic_credentials_are_invalid_client(client, key, header):
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header}
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert "WWW-Authenticate" in response.headers


def test_json_body_is_invalid_request(client, key):
    response = client.post(
        "/oauth/token",
        json={"grant_type": "client_credentials", "client_id": key.key, "client_secret": key.secret},
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_multipart_body_is_invalid_request(client, key):
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": key.key, "client_secret": key.secret},
        content_type="multipart/form-data",
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_oversized_body_is_rejected_with_413(client, key):
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "padding": "x" * 200_000},
        headers=basic_auth(key.key, key.secret),
    )
    assert_oauth_error(response, 413, "invalid_request")


def test_repeated_parameter_is_invalid_request(client, key):
    response = client.post(
        "/oauth/token",
        data="grant_type=client_credentials&scope=system/Patient.rs&scope=system/Patient.r",
        content_type="application/x-www-form-urlencoded",
        headers=basic_auth(key.key, key.secret),
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_two_authentication_methods_are_invalid_request(client, key):
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": key.key, "client_secret": key.secret},
        headers=basic_auth(key.key, key.secret),
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_credentials_in_the_query_string_are_never_read(client, key):
    response = client.post(
        f"/oauth/token?client_id={key.key}&client_secret={key.secret}",
        data={"grant_type": "client_credentials"},
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_no_client_authentication_is_invalid_client(client, key):
    response = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": key.key})
    assert_oauth_error(response, 401, "invalid_client")


def test_get_is_not_allowed(client, key):
    response = client.get("/oauth/token")
    assert response.status_code == 405
    assert response.get_json()["error"] == "invalid_request"


def test_client_id_in_body_differing_from_basic_is_invalid_request(client, key):
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "hk_someone_else"},
        headers=basic_auth(key.key, key.secret),
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_private_key_jwt_is_refused_for_a_secret_client(client, key):
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": key.key,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "a.b.c",
        },
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_empty_resource_is_invalid_request(client, key):
    assert_oauth_error(token_request(client, key, resource=""), 400, "invalid_request")


def test_unknown_resource_is_invalid_target(client, key):
    assert_oauth_error(
        token_request(client, key, resource="https://elsewhere.example/fhir"), 400, "invalid_target"
    )
    assert_oauth_error(
        token_request(client, key, resource=f"{BASE_URL}/fhir/general/Patient"), 400, "invalid_target"
    )


def test_non_ascii_and_nul_inputs_never_cause_a_500(client, key):
    for data in (
        {"grant_type": "client_credentials", "client_id": "hk_\x00", "client_secret": "x"},
        {"grant_type": "client_credentials", "client_id": "ключ", "client_secret": "секрет"},
        {"grant_type": "client_credentials\x00", "client_id": key.key, "client_secret": key.secret},
    ):
        response = client.post("/oauth/token", data=data)
        assert 400 <= response.status_code < 500, (data, response.status_code)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_auth("hk_\x00", "\x00"),
    )
    assert response.status_code == 401


def test_invalid_percent_encoding_never_causes_a_500(client, key):
    response = client.post(
        "/oauth/token",
        data=b"grant_type=client_credentials&client_id=%ZZ&client_secret=%FF%FE",
        content_type="application/x-www-form-urlencoded",
    )
    assert 400 <= response.status_code < 500


def test_non_ascii_basic_header_is_invalid_client(client, key):
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic é"}
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_scope_with_a_trailing_newline_or_tab_is_invalid_scope(client, key):
    assert_oauth_error(token_request(client, key, scope="system/Patient.rs\n"), 400, "invalid_scope")
    assert_oauth_error(
        token_request(client, key, scope="system/Patient.r\tsystem/Patient.s"), 400, "invalid_scope"
    )


def test_basic_credentials_are_form_decoded(app, client, make, sandbox):
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before Base64. A secret chosen before
    given secrets were held to URL-safe characters may still hold others."""
    developer_email = make.user("developer")
    secret = "a secret+with spaces%and-plus-signs-0123456789"
    with app.app_context():
        developer = db.session.execute(select(User).where(User.email == developer_email)).scalar_one()
        client_id = create_application("x", developer.id, secret, None).client.client_id
        db.session.commit()

    encoded = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {encoded}"},
    )
    assert response.status_code == 200, response.get_json()


def test_unknown_oauth_path_is_404_in_the_rfc_6749_shape(client):
    response = client.post("/oauth/nothing-here", data={"grant_type": "client_credentials"})
    assert response.status_code == 404
    assert response.get_json()["error"] == "invalid_request"
