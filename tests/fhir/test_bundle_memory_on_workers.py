"""A batch Bundle cannot make a worker hold unbounded memory, over a real socket.

The red-team review sent a 10 KB batch of 120 ``Observation?_count=1000`` GET entries: it
answered 156 MB and grew the worker by 0.9 GB that was never given back. Here the same batch
is refused with 413 ``too-costly`` before any search runs, and the largest batch the limits
allow, sent again and again to gunicorn's workers, leaves each worker's resident memory (read
from ``/proc/<pid>/status``) flat.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest
import requests

from fhir.response_size import MAX_BUNDLE_READ_BYTES, MAX_BUNDLE_READ_RESOURCES
from fhir.search.request import MAX_COUNT
from tests.conftest import BASE_URL
from tests.servers import gunicorn_server, served_by

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

WORKERS = 2
OBSERVATIONS = MAX_COUNT
# Each stored Observation is about 2.4 KB: the largest batch the limits allow then answers
# about 12 MB, close to (but within) the byte budget of its reads.
NOTE = "n" * 2200
REPEATS = 12
# What a worker may grow by over REPEATS of the largest allowed batch, once warmed up. Before
# the limits, one such batch grew a worker by ~30 MB and the review's by 0.9 GB.
GROWTH_BOUND_KB = 16 * 1024


def _observation(i: int) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": f"heart rate {i}"},
        "note": [{"text": NOTE}],
        "valueQuantity": {"value": 60 + i % 40, "unit": "/min"},
    }


def _batch(entries: int, count: int) -> bytes:
    entry = {"request": {"method": "GET", "url": f"Observation?_count={count}"}}
    return orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": [entry] * entries})


def _rss_kb(pid: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_batch_reads_are_bounded_and_leave_worker_memory_flat(app, make, fhir, tmp_path):
    entries = [
        {"request": {"method": "POST", "url": "Observation"}, "resource": _observation(i)}
        for i in range(OBSERVATIONS)
    ]
    seeded = fhir.post("/", {"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert seeded.status_code == 200
    headers = {
        "Authorization": f"Bearer {fhir.token}",
        "Content-Type": "application/fhir+json",
        "Prefer": "return=minimal",
    }
    log = tmp_path / "access.log"
    with gunicorn_server(app, log, WORKERS, BASE_URL) as url:
        base = f"{url}/fhir/{fhir.hospital}"
        started = {pid.strip("<>"): 0 for pid, _ in served_by(log)}
        started = {pid: _rss_kb(pid) for pid in started}

        review = _batch(120, 1000)
        assert len(review) < 10_000
        largest = _batch(MAX_BUNDLE_READ_RESOURCES // MAX_COUNT, MAX_COUNT)

        def refuse_review() -> None:
            refused = requests.post(base, data=review, headers=headers, timeout=120)
            assert refused.status_code == 413, (refused.status_code, len(refused.content))
            issue = refused.json()["issue"][0]
            assert issue["code"] == "too-costly" and f"{MAX_BUNDLE_READ_RESOURCES:,}" in issue["diagnostics"]

        def send_largest() -> str:
            start = len(served_by(log))
            response = requests.post(base, data=largest, headers=headers, timeout=60)
            assert response.status_code == 200, response.text[:300]
            assert len(response.content) <= MAX_BUNDLE_READ_BYTES + 64 * 1024
            pages = [len(e["resource"]["entry"]) for e in response.json()["entry"]]
            assert pages == [MAX_COUNT] * len(pages), "every search entry answers its whole page"
            return served_by(log)[start][0].strip("<>")

        # Warm every worker up: its first few batches size its allocator's arenas.
        warmed: dict[str, int] = {}
        while len(warmed) < WORKERS or min(warmed.values()) < 3:
            pid = send_largest()
            warmed[pid] = warmed.get(pid, 0) + 1
        before = {pid: _rss_kb(pid) for pid in warmed}
        for _ in range(REPEATS):
            refuse_review()
            send_largest()
        grown = {pid: _rss_kb(pid) - before[pid] for pid in warmed}
        print(f"RSS (KB) started {started}, warmed {before}; growth over {REPEATS} rounds: {grown}")
        assert max(grown.values()) < GROWTH_BOUND_KB, grown
