"""Bulk Data tests: a store of synthetic patients, tokens, and the kick-off as clients send it."""

from __future__ import annotations

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
