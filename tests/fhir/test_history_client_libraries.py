"""Client libraries written by others page through a type history of more than 200 versions and
see each version exactly once, and an incremental sync by ``_history?_since=`` picks up exactly
the changes made after the instant (issue 18): fhir-kit-client (npm, run by node) and fhirpy.

The server is the session app on a loopback port (``tests.servers.threaded_server``), its base
URL configured to that address (``server_url`` in ``conftest.py``); fhir-kit-client comes from
the npm registry into ``.cache/fhir-kit-client`` on first use.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from fhirpy import SyncFHIRClient
from fhirpy.base.utils import parse_pagination_url

from tests.fhir.conftest import LIVE_TIMEOUT as TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
FHIR_KIT_VERSION = "2.0.3"
FHIR_KIT = ROOT / ".cache" / "fhir-kit-client"
SCRIPT = Path(__file__).with_name("js") / "history_pages.mjs"
VERSIONS_PER_PATIENT = 7
PATIENTS = 31  # 217 versions


@pytest.fixture(scope="session")
def fhir_kit_client() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("needs node and npm")
    package = FHIR_KIT / "node_modules" / "fhir-kit-client"
    if not (package / "package.json").exists():
        FHIR_KIT.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", f"fhir-kit-client@{FHIR_KIT_VERSION}"],
            cwd=FHIR_KIT,
            check=True,
            timeout=180,
        )
    return package


@pytest.fixture
def history(fhir_base, access_token) -> list[tuple[str, str]]:
    """217 versions of 31 Patients, written over the socket; (id, versionId) of each."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {access_token}"
    written = []
    for version in range(1, VERSIONS_PER_PATIENT + 1):
        for n in range(PATIENTS):
            body = {"resourceType": "Patient", "id": f"h{n}", "name": [{"family": f"V{version}"}]}
            response = session.put(f"{fhir_base}/Patient/h{n}", json=body, timeout=TIMEOUT)
            assert response.status_code in (200, 201), response.text
            written.append((f"h{n}", str(version)))
    return written


def _node(package: Path, fhir_base: str, token: str, since: str | None = None) -> dict:
    arguments = ["node", str(SCRIPT), str(package), fhir_base, token, "Patient"] + ([since] if since else [])
    result = subprocess.run(arguments, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def _change_after_an_instant(fhir_base: str, token: str) -> tuple[str, set[tuple[str, str]]]:
    time.sleep(0.01)
    since = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    headers = {"Authorization": f"Bearer {token}"}
    changed = set()
    for n in (3, 17):
        body = {"resourceType": "Patient", "id": f"h{n}", "name": [{"family": "Changed"}]}
        response = requests.put(f"{fhir_base}/Patient/h{n}", json=body, headers=headers, timeout=TIMEOUT)
        changed.add((f"h{n}", response.json()["meta"]["versionId"]))
    created = requests.post(
        f"{fhir_base}/Patient",
        json={"resourceType": "Patient", "active": True},
        headers=headers,
        timeout=TIMEOUT,
    ).json()
    changed.add((created["id"], "1"))
    return since, changed


def test_fhir_kit_client_pages_a_type_history_and_syncs_since_an_instant(
    fhir_kit_client, fhir_base, access_token, history
):
    paged = _node(fhir_kit_client, fhir_base, access_token)
    assert len(paged["seen"]) == len(history) > 200
    assert sorted(map(tuple, paged["seen"])) == sorted(history)  # each version once
    assert paged["pages"] == -(-len(history) // 50)

    since, changed = _change_after_an_instant(fhir_base, access_token)
    synced = _node(fhir_kit_client, fhir_base, access_token, since)
    assert set(map(tuple, synced["seen"])) == changed and len(synced["seen"]) == len(changed)


def _fhirpy_history(client: SyncFHIRClient, params: dict | None = None) -> list[tuple[str, str]]:
    """A history, page by page, through fhirpy's ``execute`` and its own pagination-link parser
    (its search sets keep only entries of their own type, which a history Bundle is not)."""
    bundle = client.execute("Patient/_history", method="get", params=params)
    seen = []
    while True:
        seen += [(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in bundle.get("entry", [])]
        following = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
        if following is None:
            return seen
        path, query = parse_pagination_url(following)
        bundle = client.execute(path, method="get", params=query)


def test_fhirpy_pages_a_type_history_and_syncs_since_an_instant(fhir_base, access_token, history):
    client = SyncFHIRClient(
        fhir_base, authorization=f"Bearer {access_token}", requests_config={"timeout": TIMEOUT}
    )
    seen = _fhirpy_history(client)
    assert len(seen) == len(history) > 200
    assert sorted(seen) == sorted(history)

    since, changed = _change_after_an_instant(fhir_base, access_token)
    synced = _fhirpy_history(client, {"_since": since})
    assert set(synced) == changed and len(synced) == len(changed)
