"""Revocation reaches every gunicorn worker at once, over a real socket.

Four workers serve a token until every one of them has answered 200 (each now holds the
token's client in its cache); then the credential is revoked through the management API
and every worker must answer 401 from the very next request on. Which worker served each
request is read from gunicorn's access log (``%(p)s`` is the worker's pid).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.conftest import BASE_URL, token_request
from tests.servers import gunicorn_server, served_by

WORKERS = 4


@pytest.fixture
def gunicorn(app, tmp_path):
    log = tmp_path / "access.log"
    with gunicorn_server(app, log, WORKERS, BASE_URL) as url:
        yield url, log


def _hit_every_worker(url: str, token: str, log: Path, expected: int, budget: int = 400) -> int:
    """Send requests on fresh connections until every worker has answered; return how many."""
    start = len(served_by(log))
    for sent in range(1, budget + 1):
        response = requests.get(
            url, headers={"Authorization": f"Bearer {token}", "Connection": "close"}, timeout=10
        )
        assert response.status_code == expected, (sent, response.status_code, response.text[:200])
        time.sleep(0.05)  # let the access log catch up
        if len({pid for pid, _ in served_by(log)[start:]}) == WORKERS:
            return sent
    pytest.fail(
        f"only {len({pid for pid, _ in served_by(log)[start:]})} workers answered in {budget} requests"
    )


def test_each_revocation_reaches_every_worker_at_once(gunicorn, make, app, client, sandbox):
    base, log = gunicorn
    make.hospital("general")
    make.patient("general", "p1")
    admin = make.as_role("hospital-admin", "general")
    url = f"{base}/fhir/general/Patient/p1"

    def check(token: str, revoke) -> None:
        warmed = _hit_every_worker(url, token, log, 200)
        revoke()
        first = served_by(log)
        refused = _hit_every_worker(url, token, log, 401)
        after = served_by(log)[len(first) :]
        assert {status for _, status in after} == {"401"}
        print(f"warmed {WORKERS} workers in {warmed} requests; all refused within {refused} requests")

    key = make.api_key("general", permissions=["system/Patient.rs"])
    check(key.body["token"], lambda: admin.delete(f"/api/hospitals/general/api-keys/{key.key}"))

    patient_client = make.as_role("patient", "general", "p1")
    created = patient_client.post("/api/me/credentials", json={"name": "Health App"}).get_json()
    cred = type(key)(created["key"], created["secret"], created)
    check(
        token_request(client, cred).get_json()["access_token"],
        lambda: patient_client.delete(f"/api/me/credentials/{cred.key}"),
    )

    developer = make.as_role("developer")
    application = make.application(developer)
    admin.put(f"/api/hospitals/general/apps/{application.key}", json={"permissions": ["system/Patient.rs"]})
    resource = f"{BASE_URL}/fhir/general"
    rotated_token = token_request(client, application, resource=resource).get_json()["access_token"]
    check(rotated_token, lambda: developer.post(f"/api/apps/{application.key}/secret"))

    rotated = type(key)(
        application.key, developer.post(f"/api/apps/{application.key}/secret").get_json()["client_secret"], {}
    )
    granted_token = token_request(client, rotated, resource=resource).get_json()["access_token"]
    check(granted_token, lambda: admin.delete(f"/api/hospitals/general/apps/{application.key}"))
