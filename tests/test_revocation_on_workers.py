"""Revocation reaches every gunicorn worker at once, over a real socket.

Four workers serve a token until every one of them has answered 200 (each now holds the
token's client in its cache); then the credential is revoked through the management API
and every worker must answer 401 from the very next request on. Which worker served each
request is read from gunicorn's access log (``%(p)s`` is the worker's pid).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import BASE_URL, token_request

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(app, tmp_path):
    port = _free_port()
    log = tmp_path / "access.log"
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "FHIRGATE_BASE_URL": BASE_URL,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "FHIRGATE_KEK": app.config["FHIRGATE_KEK"],
        "FHIRGATE_TOKEN_RATE_LIMIT": "100000/minute",
    }
    env.pop("PYTHONPATH", None)
    gunicorn_bin = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn_bin, "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    command += ["--access-logfile", str(log), "--access-logformat", "%(p)s %(s)s"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start")
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _served(log: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()[:2]) for line in log.read_text().splitlines() if line.strip()]


def _hit_every_worker(url: str, token: str, log: Path, expected: int, budget: int = 400) -> int:
    """Send requests on fresh connections until every worker has answered; return how many."""
    start = len(_served(log))
    for sent in range(1, budget + 1):
        response = requests.get(
            url, headers={"Authorization": f"Bearer {token}", "Connection": "close"}, timeout=10
        )
        assert response.status_code == expected, (sent, response.status_code, response.text[:200])
        time.sleep(0.05)  # let the access log catch up
        if len({pid for pid, _ in _served(log)[start:]}) == WORKERS:
            return sent
    pytest.fail(f"only {len({pid for pid, _ in _served(log)[start:]})} workers answered in {budget} requests")


def test_each_revocation_reaches_every_worker_at_once(gunicorn, make, app, client, sandbox):
    base, log = gunicorn
    make.hospital("general")
    make.patient("general", "p1")
    admin = make.as_role("hospital-admin", "general")
    url = f"{base}/fhir/general/Patient/p1"

    def check(token: str, revoke) -> None:
        warmed = _hit_every_worker(url, token, log, 200)
        revoke()
        first = _served(log)
        refused = _hit_every_worker(url, token, log, 401)
        after = _served(log)[len(first) :]
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
