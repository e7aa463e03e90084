"""A second fhirgate process as the upstream "EHR": its own SQLite database, port and keys,
started as production starts a worker (gunicorn on ``wsgi:app``) and set up through its own
command line and management API, as its operator and its hospital admin would."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.servers import ROOT, free_port

ADMIN = "admin@ehr.example.org"
ADMIN_PASSWORD = "upstream admin password, long enough"
HOSPITAL = "ehr"


@dataclass
class UpstreamEhr:
    url: str
    admin: requests.Session

    @property
    def fhir_base(self) -> str:
        return f"{self.url}/fhir/{HOSPITAL}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"

    def api_key(self, permissions: list[str], **extra) -> dict:
        """A hospital API key at the EHR: what a developer gets from the EHR's own portal."""
        response = self.admin.post(
            f"{self.url}/api/hospitals/{HOSPITAL}/api-keys",
            json={"name": "integration platform", "permissions": permissions, **extra},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def token(self, key: dict) -> str:
        response = requests.post(
            self.token_url,
            data={"grant_type": "client_credentials"},
            auth=(key["key"], key["secret"]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def load(self, key: dict, bundle: dict) -> None:
        headers = {"Authorization": f"Bearer {self.token(key)}", "Content-Type": "application/fhir+json"}
        response = requests.post(self.fhir_base, json=bundle, headers=headers, timeout=30)
        assert response.status_code == 200, response.text


def _command(env: dict, *args: str, stdin: str | None = None) -> None:
    fhirgate = str(Path(sys.executable).with_name("fhirgate"))
    done = subprocess.run(
        [fhirgate, *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


@contextmanager
def upstream_ehr(folder: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'ehr.db'}",
        "FHIRGATE_BASE_URL": url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "FHIRGATE_KEK": secrets.token_urlsafe(32),
        "FHIRGATE_TOKEN_RATE_LIMIT": "100000/minute",
        "FHIRGATE_AUTH_FAILURE_LIMIT": "100000/minute",
        "FHIRGATE_FHIR_CLIENT_LIMIT": "1000000/minute",
        "FHIRGATE_FHIR_HOSPITAL_LIMIT": "1000000/minute",
    }
    for name in ("PYTHONPATH", "REDIS_URL", "TEST_DATABASE_URL"):
        env.pop(name, None)
    _command(env, "db", "upgrade")
    _command(env, "hospital", "create", HOSPITAL, "--name", "Upstream EHR")
    _command(env, "user", "create", ADMIN, "--role", "hospital-admin", "--hospital", HOSPITAL,
             "--password-stdin", stdin=ADMIN_PASSWORD)  # fmt: skip
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    log = (folder / "ehr.log").open("wb")
    process = subprocess.Popen(
        [gunicorn, "--workers", "1", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the upstream fhirgate did not start: {(folder / 'ehr.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        admin = requests.Session()
        login = admin.post(
            f"{url}/api/session", json={"email": ADMIN, "password": ADMIN_PASSWORD}, timeout=10
        )
        assert login.status_code == 200, login.text
        yield UpstreamEhr(url, admin)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
