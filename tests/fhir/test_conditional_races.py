"""Parallel conditional writes with the same criteria, over a socket to several workers.

The red-team review sent parallel ``PUT Patient?identifier=…`` with no match beforehand: 11 of
15 rounds created duplicates, after which that conditional update answered 412 for ever.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import requests

from tests.conftest import BASE_URL
from tests.servers import gunicorn_server

WORKERS = 4
ROUNDS = 15
PARALLEL = 6
SYSTEM = "http://hospital.example/mrn"


@pytest.fixture
def server(app, fhir, tmp_path):
    with gunicorn_server(app, tmp_path / "access.log", WORKERS, BASE_URL) as url:
        yield (
            f"{url}/fhir/{fhir.hospital}",
            {
                "Authorization": f"Bearer {fhir.token}",
                "Content-Type": "application/fhir+json",
            },
        )


def _patient(mrn: str, family: str) -> bytes:
    identifier = [{"system": SYSTEM, "value": mrn}]
    return orjson.dumps({"resourceType": "Patient", "identifier": identifier, "name": [{"family": family}]})


def _in_parallel(calls) -> list[requests.Response]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_parallel_conditional_updates_make_one_resource(server, fhir):
    base, headers = server
    for round_ in range(ROUNDS):
        mrn = f"mrn-{round_}"
        url = f"{base}/Patient?identifier={SYSTEM}|{mrn}"
        answers = _in_parallel(
            [
                lambda n=n: requests.put(url, data=_patient(mrn, f"F{n}"), headers=headers, timeout=60)
                for n in range(PARALLEL)
            ]
        )
        statuses = Counter(answer.status_code for answer in answers)
        assert statuses[201] == 1 and statuses[200] + statuses[201] == PARALLEL, (round_, statuses)
        found = fhir.search(f"Patient?identifier={SYSTEM}|{mrn}")
        assert found["total"] == 1, (round_, statuses)
        assert found["entry"][0]["resource"]["meta"]["versionId"] == str(PARALLEL)
        later = requests.put(url, data=_patient(mrn, "Later"), headers=headers, timeout=60)
        assert later.status_code == 200, later.text


def test_parallel_conditional_creates_updates_and_deletes_act_once(server, fhir):
    base, headers = server
    for round_ in range(5):
        mrn = f"mixed-{round_}"
        criteria = f"identifier={SYSTEM}|{mrn}"

        def put() -> requests.Response:
            url = f"{base}/Patient?{criteria}"
            return requests.put(url, data=_patient(mrn, "U"), headers=headers, timeout=60)

        def post() -> requests.Response:
            conditional = {**headers, "If-None-Exist": criteria}
            return requests.post(f"{base}/Patient", data=_patient(mrn, "C"), headers=conditional, timeout=60)

        answers = _in_parallel([put, post] * (PARALLEL // 2))
        assert {answer.status_code for answer in answers} <= {200, 201}, [a.text for a in answers]
        assert fhir.search(f"Patient?{criteria}")["total"] == 1

    # Parallel conditional deletes find the same Patient: one deletes it, the others find it gone.
    fhir.post("/Patient", orjson.loads(_patient("gone", "G")))
    answers = _in_parallel(
        [
            lambda: requests.delete(f"{base}/Patient?identifier={SYSTEM}|gone", headers=headers, timeout=60)
            for _ in range(PARALLEL)
        ]
    )
    assert {answer.status_code for answer in answers} == {204}
    history = fhir.search("Patient/_history?_count=100")["entry"]
    gone = [e for e in history if e["fullUrl"].endswith(history[0]["fullUrl"].rsplit("/", 1)[1])]
    assert [e["request"]["method"] for e in gone] == ["DELETE", "POST"]
