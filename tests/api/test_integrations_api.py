"""EHR integrations through the management API and the CLI: the operator connects a hospital to
an upstream server; a developer switches an application's integration on with its own EHR
credentials, locked by the application's client secret, or in test mode; and off again."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.extensions import db
from app.integrations.models import HospitalUpstream, IntegrationCredential, IntegrationSalt
from app.integrations.sealing import Unopenable, integration_key, unseal, unseal_test_credentials
from oauth.credentials import hash_secret
from oauth.models import AppGrant, OAuthClient
from tests.conftest import token_request
from tests.test_secrets_at_rest import dump_database

UPSTREAM = "http://127.0.0.1:9/fhir"
EHR_SECRET = "ehr-side-secret-of-the-developer-0f3c9a"
EHR_CLIENT = "developer-at-the-ehr"
TEST_SECRET = "operator-test-secret-5d1e77"


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def operator(make):
    make.hospital("sandbox", "Sandbox")
    make.hospital("general", "General Hospital")
    make.hospital("epic-north", "North (Epic)")
    return make.as_role("superadmin")


def _connect(operator, hospital="epic-north", **fields):
    body = {
        "base_url": UPSTREAM,
        "auth_kind": "client_secret",
        "token_url": "http://127.0.0.1:9/token",
        "scope": ["system/Patient.rs", "system/Observation.rs"],
        **fields,
    }
    return operator.put(f"/api/hospitals/{hospital}/upstream", json=body)


@pytest.fixture
def connected(operator):
    response = _connect(
        operator, test_credentials={"client_id": "operator-test-client", "client_secret": TEST_SECRET}
    )
    assert response.status_code == 200, response.get_json()
    return "epic-north"


def _switch_on(developer, app, hospital="epic-north", **fields):
    body = {
        "credentials": {"client_id": EHR_CLIENT, "client_secret": EHR_SECRET},
        "client_secret": app.secret,
        **fields,
    }
    return developer.put(f"/api/apps/{app.key}/integrations/{hospital}", json=body)


def _status(developer, application, hospital) -> str:
    return developer.get(f"/api/apps/{application.key}/integrations/{hospital}").get_json()["status"]


def test_the_operator_connects_a_hospital_and_never_sees_the_test_credentials_again(app, connected, operator):
    body = operator.get(f"/api/hospitals/{connected}/upstream").get_json()
    assert body["base_url"] == UPSTREAM and body["auth_kind"] == "client_secret"
    assert body["test_credentials"] is True and TEST_SECRET not in json.dumps(body)
    with app.app_context():
        upstream = db.session.get(HospitalUpstream, connected)
        assert TEST_SECRET.encode() not in upstream.test_credentials
        opened = unseal_test_credentials(app.config["FHIRGATE_KEK"], connected, upstream.test_credentials)
        assert opened["client_secret"] == TEST_SECRET


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"auth_kind": "kerberos"}, "auth_kind must be one of"),
        ({"base_url": "ftp://ehr.example.org/fhir"}, "must use https"),
        ({"base_url": "https://ehr.example.org/fhir?x=1"}, "must not carry a query"),
        ({"token_url": None}, "token_url is needed"),
        ({"auth_kind": "bearer_token"}, "token_url is only for"),
        ({"auth_kind": "api_key", "token_url": None, "api_key_header": "Host"}, "api_key_header must be"),
        ({"scope": ["patient/*.rs"]}, "scope"),
        ({"test_credentials": {"client_id": "x"}}, "missing client_secret"),
        ({"test_credentials": {"client_id": "x", "client_secret": "y", "extra": "z"}}, "unknown field"),
    ],
)
def test_a_registration_that_cannot_work_is_refused(operator, fields, problem):
    response = _connect(operator, **fields)
    assert response.status_code == 400, response.get_json()
    assert problem in response.get_json()["message"]


def test_in_production_the_upstream_must_be_a_public_https_address(app, operator):
    app.config["FHIRGATE_UPSTREAM_LOCAL_OK"] = False
    try:
        for url in ("http://ehr.example.org/fhir", "https://10.0.0.5/fhir", "https://127.0.0.1/fhir"):
            response = _connect(operator, base_url=url, token_url="https://ehr.example.org/token")
            assert response.status_code == 400, url
        response = _connect(operator, base_url="https://ehr.example.org/fhir", token_url="https://10.1.1.1/t")
        assert response.status_code == 400
        response = _connect(
            operator, base_url="https://ehr.example.org/fhir", token_url="https://ehr.example.org/token"
        )
        assert response.status_code == 200, response.get_json()
    finally:
        app.config["FHIRGATE_UPSTREAM_LOCAL_OK"] = True


def test_only_the_operator_connects_hospitals(make, operator):
    admin = make.as_role("hospital-admin", "epic-north")
    assert _connect(admin).status_code == 403
    assert make.as_role("developer").get("/api/hospitals/epic-north/upstream").status_code == 403


def test_a_backend_services_upstream_takes_an_rs384_or_es384_key(operator):
    def attempt(key):
        credentials = {"client_id": "c", "private_key": _pem(key)}
        return _connect(operator, auth_kind="backend_services", test_credentials=credentials)

    assert attempt(rsa.generate_private_key(65537, 1024)).status_code == 400
    assert attempt(ec.generate_private_key(ec.SECP256R1())).status_code == 400
    assert attempt(ec.generate_private_key(ec.SECP384R1())).status_code == 200
    assert attempt(rsa.generate_private_key(65537, 2048)).status_code == 200
    garbage = _connect(
        operator, auth_kind="backend_services", test_credentials={"client_id": "c", "private_key": "nope"}
    )
    assert garbage.status_code == 400 and "PEM" in garbage.get_json()["message"]


def test_developers_see_every_hospital_and_what_a_connected_one_needs(make, connected):
    developer = make.as_role("developer")
    listed = {item["hospital"]: item for item in developer.get("/api/integrations").get_json()}
    assert list(listed) == ["sandbox", "epic-north", "general"]
    north = listed["epic-north"]
    assert north["connected"] is True and north["auth_kind"] == "client_secret"
    assert north["credentials_needed"] == {"required": ["client_id", "client_secret"], "optional": []}
    assert north["test_credentials_available"] is True
    assert north["permissions_available"] == ["system/Patient.rs", "system/Observation.rs"]
    assert listed["general"]["connected"] is False and listed["general"]["credentials_needed"] is None


def test_switching_on_seals_the_credentials_under_the_secret_and_grants_access(app, make, client, connected):
    developer = make.as_role("developer")
    application = make.application(developer)
    response = _switch_on(developer, application, permissions=["system/Patient.rs"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "on" and body["mode"] == "own" and body["permissions"] == ["system/Patient.rs"]
    assert response.headers["Cache-Control"] == "no-store"
    assert EHR_SECRET not in response.get_data(as_text=True)
    with app.app_context():
        row = db.session.get(IntegrationCredential, (application.key, connected))
        salt = db.session.get(IntegrationSalt, application.key).salt
        opened = unseal(integration_key(application.secret, salt), application.key, connected, row.sealed)
        assert opened == {"client_id": EHR_CLIENT, "client_secret": EHR_SECRET}
        with pytest.raises(Unopenable):  # bound to its application and hospital
            unseal(integration_key(application.secret, salt), application.key, "general", row.sealed)
    token = token_request(client, application, resource=f"http://localhost/fhir/{connected}")
    assert token.status_code == 200, token.get_json()
    assert token.get_json()["scope"] == "system/Patient.rs"


def test_a_wrong_secret_stores_nothing_and_counts_as_a_failure(app, make, connected, monkeypatch):
    developer = make.as_role("developer")
    application = make.application(developer)
    wrong = _switch_on(developer, application, client_secret="apps_" + "x" * 43)
    assert wrong.status_code == 403 and wrong.get_json()["error"] == "invalid_client_secret"
    assert "apps_xxx" not in wrong.get_data(as_text=True)
    missing = developer.put(
        f"/api/apps/{application.key}/integrations/{connected}",
        json={"credentials": {"client_id": EHR_CLIENT, "client_secret": EHR_SECRET}},
    )
    assert missing.status_code == 400
    with app.app_context():
        assert db.session.get(IntegrationCredential, (application.key, connected)) is None
        assert db.session.get(AppGrant, (application.key, connected)) is None
    monkeypatch.setitem(app.config, "FHIRGATE_AUTH_FAILURE_LIMIT", "5/minute")
    statuses = [_switch_on(developer, application, client_secret="wrong").status_code for _ in range(5)]
    assert statuses == [403] * 5
    limited = _switch_on(developer, application)  # the token endpoint's limit: even the right secret waits
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_what_the_integration_is_given_is_checked(make, connected):
    developer = make.as_role("developer")
    application = make.application(developer)
    beyond = _switch_on(developer, application, permissions=["system/Condition.rs"])
    assert beyond.status_code == 400 and "beyond" in beyond.get_json()["message"]
    wrong_kind = _switch_on(developer, application, credentials={"access_token": "t"})
    assert wrong_kind.status_code == 400 and "missing client_id" in wrong_kind.get_json()["message"]
    local = _switch_on(developer, application, hospital="general")
    assert local.status_code == 404  # a local hospital takes an access request
    both = _switch_on(developer, application, use_test_credentials=True)
    assert both.status_code == 400


def test_test_mode_uses_the_operators_credentials_and_needs_no_secret(app, make, operator, connected):
    developer = make.as_role("developer")
    application = make.application(developer)
    response = developer.put(
        f"/api/apps/{application.key}/integrations/{connected}", json={"use_test_credentials": True}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["mode"] == "test" and response.get_json()["status"] == "on"
    # The operator withdraws the test credentials: the integrations that used them end.
    assert _connect(operator).status_code == 200
    assert _status(developer, application, connected) == "off"
    with app.app_context():
        assert db.session.get(AppGrant, (application.key, connected)) is None
    refused = developer.put(
        f"/api/apps/{application.key}/integrations/{connected}", json={"use_test_credentials": True}
    )
    assert refused.status_code == 400 and "no test credentials" in refused.get_json()["message"]


def test_switching_off_deletes_the_credentials_and_the_grant(app, make, connected):
    developer = make.as_role("developer")
    application = make.application(developer)
    assert _switch_on(developer, application).status_code == 200
    assert developer.delete(f"/api/apps/{application.key}/integrations/{connected}").status_code == 204
    assert developer.delete(f"/api/apps/{application.key}/integrations/{connected}").status_code == 404
    with app.app_context():
        assert db.session.get(IntegrationCredential, (application.key, connected)) is None
        assert db.session.get(AppGrant, (application.key, connected)) is None


def test_deleting_the_application_deletes_its_credentials(app, make, connected):
    developer = make.as_role("developer")
    application = make.application(developer)
    assert _switch_on(developer, application).status_code == 200
    assert developer.delete(f"/api/apps/{application.key}").status_code == 204
    with app.app_context():
        assert db.session.get(IntegrationCredential, (application.key, connected)) is None
        assert db.session.get(IntegrationSalt, application.key) is None


def test_disconnecting_the_hospital_ends_every_integration_with_it(app, make, operator, connected):
    developer = make.as_role("developer")
    application = make.application(developer)
    assert _switch_on(developer, application).status_code == 200
    assert operator.delete(f"/api/hospitals/{connected}/upstream").status_code == 204
    assert operator.delete(f"/api/hospitals/{connected}/upstream").status_code == 404
    with app.app_context():
        assert db.session.get(IntegrationCredential, (application.key, connected)) is None
        assert db.session.get(AppGrant, (application.key, connected)) is None


def test_another_developer_cannot_see_or_switch_an_application(make, connected):
    owner = make.as_role("developer")
    application = make.application(owner)
    stranger = make.as_role("developer")
    assert _switch_on(stranger, application).status_code == 404
    assert stranger.get(f"/api/apps/{application.key}/integrations").status_code == 404
    assert stranger.delete(f"/api/apps/{application.key}/integrations/{connected}").status_code == 404


def test_an_application_without_a_secret_cannot_lock_credentials(make, connected):
    developer = make.as_role("developer")
    public = make.application(
        developer, token_endpoint_auth_method="none", redirect_uris=["https://a.example/cb"]
    )
    response = _switch_on(developer, public, client_secret="anything")
    assert response.status_code == 400 and "no client secret" in response.get_json()["message"]


def test_rotating_with_the_current_secret_reseals_and_without_it_asks_for_the_credentials_again(
    app, make, connected
):
    developer = make.as_role("developer")
    application = make.application(developer)
    assert _switch_on(developer, application).status_code == 200

    wrong = developer.post(f"/api/apps/{application.key}/secret", json={"client_secret": "not-it"})
    assert wrong.status_code == 403  # and the secret was not rotated
    with app.app_context():
        old_salt = db.session.get(IntegrationSalt, application.key).salt
    current = {"client_secret": application.secret}
    rotated = developer.post(f"/api/apps/{application.key}/secret", json=current)
    assert rotated.status_code == 200, rotated.get_json()
    new_secret = rotated.get_json()["client_secret"]
    assert _status(developer, application, connected) == "on"
    with app.app_context():
        row = db.session.get(IntegrationCredential, (application.key, connected))
        salt = db.session.get(IntegrationSalt, application.key).salt
        opened = unseal(integration_key(new_secret, salt), application.key, connected, row.sealed)
        assert opened["client_id"] == EHR_CLIENT
        assert salt != old_salt
        for secret, salt_then in ((application.secret, old_salt), (application.secret, salt)):
            with pytest.raises(Unopenable):  # the old secret opens nothing, with either salt
                unseal(integration_key(secret, salt_then), application.key, connected, row.sealed)

    assert developer.post(f"/api/apps/{application.key}/secret").status_code == 200
    assert _status(developer, application, connected) == "needs_credentials"


def test_a_database_dump_with_the_servers_keys_reveals_no_ehr_credential(app, make, connected):
    """Everything the server holds — every table, SECRET_KEY, FHIRGATE_KEK — and none of it
    opens the sealed credentials, which appear nowhere in clear."""
    developer = make.as_role("developer")
    application = make.application(developer)
    ehr_key = _pem(rsa.generate_private_key(65537, 2048))
    make.hospital("cerner-south", "South (Cerner)")
    operator = make.as_role("superadmin")
    south = {"hospital": "cerner-south", "auth_kind": "backend_services", "token_url": "http://127.0.0.1:9/t"}
    assert _connect(operator, **south).status_code == 200
    assert _switch_on(developer, application).status_code == 200
    key_credentials = {"client_id": EHR_CLIENT, "private_key": ehr_key}
    on = _switch_on(developer, application, hospital="cerner-south", credentials=key_credentials)
    assert on.status_code == 200, on.get_json()
    with app.app_context():
        dump = dump_database()
        assert application.key in dump  # the dump does hold the rows
        body = "".join(line for line in ehr_key.splitlines() if not line.startswith("-----"))
        for needle in (EHR_SECRET, body, body[64:128], application.secret):
            assert needle.lower() not in dump.lower()
        config = app.config
        salt = db.session.get(IntegrationSalt, application.key).salt
        stored_hash = db.session.get(OAuthClient, application.key).secret_hash
        assert stored_hash == hash_secret(application.secret)
        candidates = [
            integration_key(config["SECRET_KEY"], salt),
            integration_key(config["FHIRGATE_KEK"], salt),
            integration_key(stored_hash, salt),
            HKDF(hashes.SHA256(), 32, salt, None).derive(config["SECRET_KEY"].encode()),
        ]
        for hospital in ("epic-north", "cerner-south"):
            sealed = db.session.get(IntegrationCredential, (application.key, hospital)).sealed
            for key in candidates:
                with pytest.raises(Unopenable):
                    unseal(key, application.key, hospital, sealed)


def test_the_cli_connects_and_disconnects_a_hospital(app, make):
    make.hospital("epic-west", "West")
    runner = app.test_cli_runner()
    credentials = json.dumps({"access_token": "operator-bearer-for-tests"})
    result = runner.invoke(
        args=["hospital", "connect", "epic-west", "--base-url", "http://127.0.0.1:9/r4",
              "--auth", "bearer-token", "--test-credentials-stdin"],
        input=credentials,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "operator-bearer-for-tests" not in result.output
    with app.app_context():
        upstream = db.session.get(HospitalUpstream, "epic-west")
        assert upstream.auth_kind == "bearer_token" and upstream.scope == "system/*.rs"
    refused = runner.invoke(
        args=["hospital", "connect", "epic-west", "--base-url", "http://127.0.0.1:9/r4", "--auth", "api-key",
              "--token-url", "http://127.0.0.1:9/t"],
    )  # fmt: skip
    assert refused.exit_code != 0 and "token_url is only for" in refused.output
    assert runner.invoke(args=["hospital", "disconnect", "epic-west"]).exit_code == 0
    assert runner.invoke(args=["hospital", "disconnect", "epic-west"]).exit_code != 0
    with app.app_context():
        assert db.session.get(HospitalUpstream, "epic-west") is None
