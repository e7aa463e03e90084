"""FHIR fixtures: a hospital with a full-access system token, and a client helper; the app on
a loopback port with a token from its real token endpoint, for client libraries written by
others."""

from __future__ import annotations

import base64
import json

import orjson
import pytest
import requests

from app.extensions import db
from tests.conftest import BASE_URL, token_request
from tests.servers import threaded_server

FHIR_JSON = "application/fhir+json"
LIVE_HOSPITAL = "general"
LIVE_TIMEOUT = 10


class FhirClient:
    """A test client bound to one hospital's FHIR base with a bearer token."""

    def __init__(self, client, hospital: str, token: str):
        self.client = client
        self.hospital = hospital
        self.token = token
        self.base = f"/fhir/{hospital}"
        self.base_url = f"{BASE_URL}{self.base}"

    def headers(self, extra: dict | None = None) -> dict:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, path: str, **kwargs):
        headers = self.headers(kwargs.pop("headers", None))
        return self.client.get(self.base + path, headers=headers, **kwargs)

    def post(self, path: str, body=None, *, content_type: str = FHIR_JSON, **kwargs):
        headers = self.headers(kwargs.pop("headers", None))
        data = body if isinstance(body, str | bytes) else orjson.dumps(body)
        return self.client.post(
            self.base + path, data=data, content_type=content_type, headers=headers, **kwargs
        )

    def put(self, path: str, body, **kwargs):
        headers = self.headers(kwargs.pop("headers", None))
        return self.client.put(
            self.base + path, data=orjson.dumps(body), content_type=FHIR_JSON, headers=headers, **kwargs
        )

    def patch(self, path: str, operations, **kwargs):
        headers = self.headers(kwargs.pop("headers", None))
        return self.client.patch(
            self.base + path,
            data=operations if isinstance(operations, str | bytes) else orjson.dumps(operations),
            content_type="application/json-patch+json",
            headers=headers,
            **kwargs,
        )

    def delete(self, path: str, **kwargs):
        return self.client.delete(
            self.base + path, headers=self.headers(kwargs.pop("headers", None)), **kwargs
        )

    def create(self, resource: dict) -> dict:
        response = self.post(f"/{resource['resourceType']}", resource)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def search(self, query: str) -> dict:
        response = self.get(f"/{query}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def ids(self, query: str, mode: str = "match") -> list[str]:
        bundle = self.search(query)
        return [
            e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode
        ]


def patient_fhir_client(make, client, hospital: str, patient_id: str) -> FhirClient:
    """A FhirClient with the token of a new patient credential of ``patient_id``."""
    credential = make.patient_credential(hospital, patient_id)
    return FhirClient(client, hospital, token_request(client, credential).get_json()["access_token"])


@pytest.fixture
def fhir(client, make) -> FhirClient:
    make.hospital("general")
    cred = make.api_key("general", permissions=["system/*.cruds"])
    return FhirClient(client, "general", cred.body["token"])


@pytest.fixture
def postgres_only(app):
    """Skips the test on SQLite: direct reads (and the read fast path) are PostgreSQL's."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("direct reads are PostgreSQL's")


@pytest.fixture
def server_url(app, monkeypatch):
    """The session app on 127.0.0.1:<ephemeral>, configured with that address as its base URL."""
    # Restored by monkeypatch after the server has stopped (this fixture tears down first).
    configure = lambda url: monkeypatch.setitem(app.config, "FHIRGATE_BASE_URL", url)  # noqa: E731
    with threaded_server(app, configure) as url:
        yield url


@pytest.fixture
def fhir_base(server_url) -> str:
    return f"{server_url}/fhir/{LIVE_HOSPITAL}"


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def access_token(make, server_url, fhir_base) -> str:
    """A bearer token from POST /oauth/token (client_secret_basic), after the base URL switch."""
    make.hospital(LIVE_HOSPITAL)
    cred = make.api_key(LIVE_HOSPITAL, permissions=["system/*.cruds"])
    response = requests.post(
        f"{server_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=requests.auth.HTTPBasicAuth(cred.key, cred.secret),
        timeout=LIVE_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "system/*.cruds"
    claims = _claims(body["access_token"])
    assert claims["iss"] == server_url
    assert claims["aud"] == fhir_base
    return body["access_token"]


def toggled_get(client, app, monkeypatch, setting: str):
    """A GET with the fast path ``setting`` (``FHIRGATE_…_FAST_PATH``) on or off for that request."""

    def get(fast: bool, path: str, **kwargs):
        monkeypatch.setitem(app.config, setting, fast)
        return client.get(path, **kwargs)

    return get


def counted_view(app, monkeypatch, endpoint: str) -> list[None]:
    """One entry per request the Flask view ``endpoint`` answered (not a fast path)."""
    calls = []
    view = app.view_functions[endpoint]

    def counted(**kwargs):
        calls.append(None)
        return view(**kwargs)

    monkeypatch.setitem(app.view_functions, endpoint, counted)
    return calls


@pytest.fixture
def recorded(app, monkeypatch) -> list:
    """The ``RequestFacts`` handed to the audit writer (which still stores them)."""
    facts = []
    writer = app.extensions["fhirgate_audit"]
    real = writer.record
    monkeypatch.setattr(writer, "record", lambda f: facts.append(f) or real(f))
    return facts
