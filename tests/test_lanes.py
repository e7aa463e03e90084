"""A worker keeps a thread for light requests whatever heavy requests are running (app/lanes.py).

The attack: four cheap requests held every worker's thread, and every other client waited.
Here a search is held inside the server (as a slow one would be) while other requests come.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from app.lanes import HeavySlots, is_heavy
from tests.servers import threaded_server

HEAVY = [
    ("GET", "/fhir/h/Patient"),
    ("GET", "/fhir/h"),  # a system search
    ("GET", "/fhir/h/"),
    ("POST", "/fhir/h/_search"),
    ("GET", "/fhir/h/Patient/"),
    ("POST", "/fhir/h/Observation/_search"),
    ("GET", "/fhir/h/_history"),
    ("GET", "/fhir/h/Patient/_history"),
    ("GET", "/fhir/h/Patient/p1/_history"),
    ("GET", "/fhir/h/Patient/p1/$everything"),
    ("POST", "/fhir/h"),
    ("POST", "/fhir/h/"),
    ("HEAD", "/fhir/h/Observation"),  # Flask answers HEAD with the GET view: a whole search
    ("PUT", "/fhir/h/Patient"),  # conditional update and delete search first
    ("DELETE", "/fhir/h/Patient"),
]
LIGHT = [
    ("GET", "/fhir/h/Patient/p1"),
    ("GET", "/fhir/h/Patient/p1/_history/2"),
    ("POST", "/fhir/h/Patient"),
    ("PUT", "/fhir/h/Patient/p1"),
    ("DELETE", "/fhir/h/Patient/p1"),
    ("HEAD", "/fhir/h/Patient/p1"),
    ("GET", "/fhir/h/metadata"),
    ("GET", "/fhir/h/.well-known/smart-configuration"),
    ("POST", "/oauth/token"),
    ("GET", "/api/session"),
]


@pytest.mark.parametrize(("method", "path"), HEAVY + LIGHT)
def test_whatever_runs_a_search_is_heavy(method, path):
    assert is_heavy({"REQUEST_METHOD": method, "PATH_INFO": path}) == ((method, path) in HEAVY)


def test_a_conditional_create_is_heavy():
    create = {"REQUEST_METHOD": "POST", "PATH_INFO": "/fhir/h/Patient"}
    assert not is_heavy(create)
    assert is_heavy({**create, "HTTP_IF_NONE_EXIST": "identifier=x|1"})


def test_a_heavy_request_finding_the_slot_taken_is_refused_and_light_ones_go_on(app, make, monkeypatch):
    make.hospital("general")
    make.patient("general", "p1")
    token = make.api_key("general", permissions=["system/*.cruds"]).body["token"]
    headers = {"Authorization": f"Bearer {token}"}
    monkeypatch.setitem(app.extensions, "fhirgate_heavy_slots", HeavySlots(1))  # production's one
    inside, release = threading.Event(), threading.Event()
    search = app.view_functions["fhir.search"]

    def held_search(*args, **kwargs):
        inside.set()
        release.wait(10)  # a search that takes its time
        return search(*args, **kwargs)

    app.view_functions["fhir.search"] = held_search
    try:
        with threaded_server(app) as url:
            base = f"{url}/fhir/general"
            held = threading.Thread(
                target=lambda: requests.get(f"{base}/Patient", headers=headers, timeout=20)
            )
            held.start()
            assert inside.wait(10)
            started = time.monotonic()
            # (a modifier: the view's, not the quick searches answered beneath Flask beside reads)
            refused = requests.get(f"{base}/Observation?code:text=x", headers=headers, timeout=5)
            read = requests.get(f"{base}/Patient/p1", headers=headers, timeout=5)
            written = requests.put(
                f"{base}/Patient/p2",
                json={"resourceType": "Patient", "id": "p2"},
                headers={**headers, "Content-Type": "application/fhir+json"},
                timeout=5,
            )
            took = time.monotonic() - started
            release.set()
            held.join(20)
            after = requests.get(f"{base}/Observation?code:text=x", headers=headers, timeout=5)
    finally:
        app.view_functions["fhir.search"] = search
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert refused.json()["issue"][0]["code"] == "throttled"
    assert (read.status_code, written.status_code) == (200, 201)
    assert took < 2  # nothing waited for the held search
    assert after.status_code == 200  # the slot is free again
