"""The Bulk Data checks of the public suites (../shared/CONFORMANCE.md §9), as they make them:
over HTTP against a running server, with a real ``fhirgate worker`` process doing the export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.bulk.conftest import KICKOFF, bearer, check_ndjson, poll
from tests.servers import export_worker, stop_process, threaded_server


@pytest.fixture(scope="module")
def live(app):
    before = app.config["FHIRGATE_BASE_URL"]
    with threaded_server(app, on_port=lambda url: app.config.update(FHIRGATE_BASE_URL=url)) as url:
        worker = export_worker(app)
        try:
            yield url
        finally:
            stop_process(worker)
            app.config["FHIRGATE_BASE_URL"] = before


@pytest.fixture
def backend(live, make, seeded, client):
    """A backend service's token (``system/*.rs``), and a Group of three of the patients."""
    key = make.api_key(seeded, permissions=["system/*.rs", "system/Group.crus"])
    auth = bearer(client, key)
    group = {
        "resourceType": "Group",
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": f"Patient/sb0-p{n}"}} for n in range(3)],
    }
    created = requests.post(
        f"{live}/fhir/{seeded}/Group", json=group, headers={**auth, "Content-Type": "application/fhir+json"}
    )
    assert created.status_code == 201, created.text
    return auth, created.json()["id"]


def kickoff(live: str, path: str, auth: dict, **params) -> requests.Response:
    return requests.get(f"{live}/fhir/general/{path}", params=params, headers={**KICKOFF, **auth}, timeout=15)


def test_kickoff_without_a_token_is_refused(live, seeded):
    for path in ("$export", "Patient/$export", "Group/any/$export"):
        assert kickoff(live, path, {}).status_code in (400, 401)


@pytest.mark.parametrize("level", ["Group", "Patient/$export", "$export"])
def test_an_export_as_the_suites_check_it(live, backend, level):
    auth, group_id = backend
    path = f"Group/{group_id}/$export" if level == "Group" else level
    started = kickoff(live, path, auth)
    assert started.status_code == 202, started.text
    status_url = started.headers["Content-Location"]
    assert status_url.startswith(f"{live}/fhir/general/")

    done = poll(requests.get, status_url, auth)
    assert done.status_code == 200, done.text
    assert "application/json" in done.headers["Content-Type"]
    manifest = done.json()
    assert {"transactionTime", "request", "requiresAccessToken", "output", "error"} <= manifest.keys()
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"] == f"{live}/fhir/general/{path}"
    datetime.fromisoformat(manifest["transactionTime"].replace("Z", "+00:00"))
    assert manifest["output"]
    assert all(entry["url"].startswith(f"{live}/fhir/general/") for entry in manifest["output"])

    first = manifest["output"][0]["url"]
    assert requests.get(first, headers={"Accept": "application/fhir+ndjson"}).status_code in (400, 401)
    patients = set()
    for entry in manifest["output"]:
        got = requests.get(entry["url"], headers={**auth, "Accept": "application/fhir+ndjson"}, timeout=15)
        assert got.status_code == 200
        assert got.headers["Content-Type"].startswith("application/fhir+ndjson")
        resources = check_ndjson(got.text, entry["type"])
        assert len(resources) == entry["count"]
        if entry["type"] == "Patient":
            patients |= {resource["id"] for resource in resources}
    expected = {"sb0-p0", "sb0-p1", "sb0-p2"} if level == "Group" else {f"sb0-p{n}" for n in range(4)}
    assert patients == expected  # at least two, and nobody outside the group (or the hospital)


def test_cancel_then_the_status_is_gone(live, backend):
    auth, group_id = backend
    started = kickoff(live, f"Group/{group_id}/$export", auth)
    assert started.status_code == 202
    status_url = started.headers["Content-Location"]
    assert requests.delete(status_url, headers=auth).status_code == 202
    gone = requests.get(status_url, headers={**auth, "Accept": "application/json"})
    assert gone.status_code == 404
    assert gone.json()["resourceType"] == "OperationOutcome"
    assert requests.delete(status_url, headers=auth).status_code == 404


@pytest.mark.parametrize("output_format", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
def test_the_three_output_formats(live, backend, output_format):
    auth, group_id = backend
    started = kickoff(live, f"Group/{group_id}/$export", auth, _outputFormat=output_format)
    assert started.status_code == 202, started.text
    assert requests.delete(started.headers["Content-Location"], headers=auth).status_code == 202


def test_since_a_week_ago(live, backend):
    auth, group_id = backend
    week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat(timespec="seconds").replace("+00:00", "Z")
    started = kickoff(live, f"Group/{group_id}/$export", auth, _since=week_ago)
    assert started.status_code == 202, started.text
    assert requests.delete(started.headers["Content-Location"], headers=auth).status_code == 202


def test_an_unknown_output_format_is_refused(live, backend):
    auth, group_id = backend
    refused = kickoff(live, f"Group/{group_id}/$export", auth, _outputFormat="text/csv")
    assert refused.status_code == 400
    assert refused.json()["resourceType"] == "OperationOutcome"


def test_the_capability_statement_declares_the_export_operations(live, seeded):
    statement = requests.get(f"{live}/fhir/general/metadata", timeout=15).json()
    assert "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data" in statement["instantiates"]
    (rest,) = statement["rest"]
    assert [op["name"] for op in rest["operation"]] == ["export"]
    by_type = {resource["type"]: resource for resource in rest["resource"]}
    assert [op["name"] for op in by_type["Group"]["operation"]] == ["export"]
    assert "export" in [op["name"] for op in by_type["Patient"]["operation"]]
    # Each declared level answers a kick-off (here without a token: 401, not 404)
    for path in ("$export", "Patient/$export", "Group/g1/$export"):
        assert requests.get(f"{live}/fhir/general/{path}", headers=KICKOFF, timeout=15).status_code == 401
