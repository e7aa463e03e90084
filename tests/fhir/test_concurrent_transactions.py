"""Concurrent transaction Bundles over a socket: no deadlock answers 500, the store stays whole.

The red-team review sent 20 transaction Bundles at once, half of them writing Patients then
Observations and half the other way round: on PostgreSQL 5 of 20 deadlocked into a 500. Here
the same goes to gunicorn's workers; every answer must be 200 (or 409 after the server's own
retries), and afterwards each resource's versions and index rows must be what its history says.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import orjson
import requests
from sqlalchemy import text

from app.extensions import db
from fhir.search.extract import extract
from tests.conftest import BASE_URL
from tests.servers import gunicorn_server

WORKERS = 4
BUNDLES = 20
RESOURCES = 6  # of each type


def _patient(i: int, round_: int) -> dict:
    return {"resourceType": "Patient", "id": f"pa{i}", "name": [{"family": f"F{i}r{round_}"}]}


def _observation(i: int, round_: int) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"ob{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": f"c{round_}"}], "text": f"r{round_}"},
        "subject": {"reference": f"Patient/pa{i}"},
    }


def _put(resource: dict) -> dict:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"request": {"method": "PUT", "url": url}, "resource": resource}


def _bundle(round_: int) -> bytes:
    patients = [_put(_patient(i, round_)) for i in range(RESOURCES)]
    observations = [_put(_observation(i, round_)) for i in range(RESOURCES)]
    # Half the Bundles name the Patients first, half the Observations first, each in reverse.
    entries = patients + observations if round_ % 2 else observations[::-1] + patients[::-1]
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def assert_store_consistent(app, hospital: str) -> None:
    """Each current row is its newest version, versions are 1..n, index rows match the content."""
    with app.app_context():
        session = db.session
        params = {"h": hospital}
        current = session.execute(
            text(
                "SELECT resource_type, id, version_id, content FROM fhir_resources"
                " WHERE hospital_id = :h AND resource_type <> 'AuditEvent'"
            ),
            params,
        ).all()
        versions: dict[tuple[str, str], list[int]] = {}
        for resource_type, resource_id, version_id in session.execute(
            text(
                "SELECT resource_type, id, version_id FROM fhir_history"
                " WHERE hospital_id = :h AND resource_type <> 'AuditEvent' ORDER BY version_id"
            ),
            params,
        ):
            versions.setdefault((resource_type, resource_id), []).append(version_id)
        strings = Counter(
            session.execute(
                text(
                    "SELECT resource_type, resource_id, param, value FROM fhir_idx_string"
                    " WHERE hospital_id = :h AND resource_type <> 'AuditEvent'"
                ),
                params,
            ).all()
        )
        tokens = Counter(
            session.execute(
                text(
                    "SELECT resource_type, resource_id, param, system, code FROM fhir_idx_token"
                    " WHERE hospital_id = :h AND resource_type <> 'AuditEvent'"
                ),
                params,
            ).all()
        )
        session.rollback()
    assert len(current) == len(versions)
    expected_strings: Counter = Counter()
    expected_tokens: Counter = Counter()
    for resource_type, resource_id, version_id, content in current:
        assert versions[(resource_type, resource_id)] == list(range(1, version_id + 1))
        if content is None:  # deleted: no index rows
            continue
        values = extract(orjson.loads(content))
        expected_strings.update((resource_type, resource_id, p, v) for p, v, _ in values.strings)
        expected_tokens.update(
            (resource_type, resource_id, p, s and s[:256], c and c[:256]) for p, s, c, _ in values.tokens
        )
    assert strings == expected_strings
    assert tokens == expected_tokens


def test_opposite_order_transactions_neither_fail_nor_corrupt(app, fhir, tmp_path):
    seeded = fhir.post("/", orjson.loads(_bundle(0)))
    assert seeded.status_code == 200, seeded.get_json()
    headers = {
        "Authorization": f"Bearer {fhir.token}",
        "Content-Type": "application/fhir+json",
        "Prefer": "return=minimal",
    }
    with gunicorn_server(app, tmp_path / "access.log", WORKERS, BASE_URL) as url:
        base = f"{url}/fhir/{fhir.hospital}"

        def send(round_: int) -> tuple[int, str]:
            response = requests.post(base, data=_bundle(round_), headers=headers, timeout=120)
            return response.status_code, response.text[:300]

        with ThreadPoolExecutor(BUNDLES) as pool:
            answers = list(pool.map(send, range(1, BUNDLES + 1)))
    statuses = Counter(status for status, _ in answers)
    print(f"answers: {dict(statuses)}")
    assert set(statuses) <= {200, 409}, answers
    assert statuses[200] >= BUNDLES // 2, answers
    for status, body in answers:
        if status == 409:
            assert orjson.loads(body)["resourceType"] == "OperationOutcome"
    assert_store_consistent(app, fhir.hospital)
    versions = {entry["resource"]["meta"]["versionId"] for entry in fhir.search("Patient?_count=50")["entry"]}
    assert versions == {str(1 + statuses[200])}
