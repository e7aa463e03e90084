"""README's "Connect a patient app" example runs as written against a running server: the
patient's part (log in, untick, allow) done by a ``requests`` session, as a browser would."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from urllib.parse import urljoin

import requests

from tests.conftest import PASSWORD
from tests.oauth.smart_launch import consent_form
from tests.servers import ROOT, make_run_server

EXAMPLE = ROOT / "docs" / "examples" / "patient_app.py"


def approve(server: str, url: str, email: str) -> None:
    browser = requests.Session()
    login = browser.get(url, timeout=10)  # follows to the login form
    fields = dict(re.findall(r'name="(csrf_token|next)" value="([^"]*)"', login.text))
    fields["next"] = fields["next"].replace("&amp;", "&")
    consent = browser.post(
        f"{server}/login", data={**fields, "email": email, "password": PASSWORD}, timeout=10
    )
    assert "Allow My app" in consent.text, consent.text[:500]
    form = consent_form(consent.text)
    kept = [scope for scope in form.grants if scope != "patient/Condition.rs"]
    decision = {**form.hidden, "grant": kept, "expiry": "30d", "decision": "approve"}
    back = browser.post(
        urljoin(server, "/oauth/authorize/decision"), data=decision, allow_redirects=False, timeout=10
    )
    assert back.status_code == 303 and back.headers["Location"].startswith("http://127.0.0.1:8765/callback?")
    assert browser.get(back.headers["Location"], timeout=10).status_code == 200  # the example's own page


def test_the_patient_app_example_launches_reads_and_refreshes(app, make, tmp_path):
    make.hospital("sandbox", "Sandbox")
    make.patient("sandbox", "sb-patient")
    email = make.user("patient", "sandbox", "sb-patient")
    registered = make.application(
        name="My app", publisher="Me", redirect_uris=["http://127.0.0.1:8765/callback"]
    )
    with make_run_server(app, tmp_path / "server.log") as served:
        command = [sys.executable, str(EXAMPLE), "--client-id", registered.key]
        command += ["--client-secret", registered.secret, "--server", served.url]
        # BROWSER=true: webbrowser "opens" the page with /bin/true; the test is the browser
        quiet = {"PATH": "/usr/bin:/bin", "BROWSER": "true", "PYTHONUNBUFFERED": "1"}
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        example = subprocess.Popen(command, env=quiet, **pipes)
        try:
            line = ""
            deadline = time.monotonic() + 30
            while "/oauth/authorize?" not in line and time.monotonic() < deadline:
                line = example.stdout.readline()
            url = line.strip()
            assert url.startswith(f"{served.url}/oauth/authorize?"), line
            approve(served.url, url, email)
            output, errors = example.communicate(timeout=30)
        finally:
            example.kill()
    assert example.returncode == 0, errors
    assert "patient: sb-patient" in output and "read: Patient/sb-patient" in output
    assert "patient/Condition.rs" not in output and "search: Observation?patient= → 200" in output
    assert "refreshed: a new access token" in output
