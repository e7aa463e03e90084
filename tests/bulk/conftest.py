"""Bulk Data tests: a store of synthetic patients, tokens, and the kick-off as clients send it."""

from __future__ import annotations

import threading
import time

import pytest

from app.extensions import db
from fhir.importer import load_resources
from fhir.resources.R4B import get_fhir_model_class
from fhir.sandbox import generate
from fhir.storage.sql import SqlRepository
from tests.conftest import token_request

KICKOFF = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


def load_patients(app, hospital: str, count: int, seed: int = 0) -> int:
    with app.app_context():
        loaded = load_resources(SqlRepository(db.session, hospital), generate(count, seed=seed))
        db.session.commit()
    return loaded


def bearer(client, credential, **form) -> dict:
    response = token_request(client, credential, **form)
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def poll(get, status_url: str, auth: dict, timeout: float = 60):
    """Poll as the suites do: while 202, wait what Retry-After says; the final response."""
    deadline = time.monotonic() + timeout
    while True:
        response = get(status_url, headers={**auth, "Accept": "application/json"})
        if response.status_code != 202:
            return response
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["X-Progress"]
        assert response.json()["resourceType"] == "OperationOutcome"
        if time.monotonic() > deadline:
            raise AssertionError("the export did not finish in time")
        time.sleep(min(float(response.headers["Retry-After"]), 0.2))


def check_ndjson(text: str, resource_type: str) -> list[dict]:
    """Every line one valid R4B resource of the file's type."""
    import orjson

    lines = text.splitlines()
    resources = [orjson.loads(line) for line in lines]
    model = get_fhir_model_class(resource_type)
    for resource in resources:
        assert resource["resourceType"] == resource_type
        model.model_validate(resource)
    return resources


@pytest.fixture
def seeded(app, make):
    """Two hospitals: ``general`` with 4 synthetic patients, ``other`` with 2."""
    make.hospital("general")
    make.hospital("other")
    load_patients(app, "general", 4)
    load_patients(app, "other", 2, seed=7)
    return "general"


def run_worker(app) -> None:
    """One pass of a worker in this process: every waiting job runs."""
    from fhir.bulk.worker import purge_expired, run_one

    with app.app_context():
        purge_expired(app.extensions["fhirgate_export_storage"])
        while run_one(app, "test-worker", threading.Event()):
            pass


def local(url: str) -> str:
    """The path of one of the server's absolute URLs, for the test client."""
    return url.split("localhost", 1)[1] if "localhost" in url else url


class Exporter:
    """A client that kicks off, waits for and downloads exports through the test client."""

    def __init__(self, app, client, auth: dict, hospital: str = "general"):
        self.app, self.client, self.auth, self.hospital = app, client, auth, hospital

    def kickoff(self, path: str = "$export", query: str = "", headers: dict | None = None, **kwargs):
        url = f"/fhir/{self.hospital}/{path}" + (f"?{query}" if query else "")
        method = self.client.post if "json" in kwargs else self.client.get
        return method(url, headers={**KICKOFF, **self.auth, **(headers or {})}, **kwargs)

    def export(self, path: str = "$export", query: str = "", **kwargs) -> dict:
        """Kick off, run the worker, and the manifest."""
        started = self.kickoff(path, query, **kwargs)
        assert started.status_code == 202, started.get_json()
        run_worker(self.app)
        done = self.client.get(local(started.headers["Content-Location"]), headers=self.auth)
        assert done.status_code == 200, done.get_data(as_text=True)
        return done.get_json()

    def files(self, manifest: dict) -> dict[str, list[dict]]:
        """Every exported resource, by type, each file checked line by line."""
        found: dict[str, list[dict]] = {}
        for entry in manifest["output"]:
            got = self.client.get(local(entry["url"]), headers=self.auth)
            assert got.status_code == 200
            found.setdefault(entry["type"], []).extend(
                check_ndjson(got.get_data(as_text=True), entry["type"])
            )
        return found
