"""``make run``'s server, attacked the way the review did: connections left half-open must not
stall it, and its several workers share the SQLite database ``make run`` creates."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import BASE_URL, PASSWORD
from tests.servers import make_run_server

# What a slowloris client leaves on a connection: nothing at all, half a request line, a
# request line and some headers but never the blank line that ends them.
HALF_OPEN = [
    b"",
    b"GET /hea",
    b"GET /healthz HTTP/1.1\r\n",
    b"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n",
]


@pytest.fixture
def server(app, tmp_path):
    with make_run_server(app, tmp_path / "server.log", BASE_URL) as url:
        yield url


def test_half_open_connections_do_not_stall_the_server_nor_its_stop(server):
    address = urlsplit(server.url)
    hanging = []
    try:
        for opening in HALF_OPEN * 3:  # three of each: more than make run's workers
            connection = socket.create_connection((address.hostname, address.port), timeout=5)
            connection.sendall(opening)
            hanging.append(connection)
        time.sleep(0.2)  # the server has taken them in
        for _ in range(4):  # each on a new connection, so that every worker is asked
            started = time.monotonic()
            response = requests.get(f"{server.url}/healthz", headers={"Connection": "close"}, timeout=2)
            assert response.status_code == 200
            assert time.monotonic() - started < 2
        # Nor do they, or a browser's idle keep-alive connection, hold Ctrl-C for long.
        browser = requests.Session()
        assert browser.get(f"{server.url}/healthz", timeout=2).status_code == 200
        assert server.interrupt(within_s=10), "make run's server still running 10 s after Ctrl-C"
    finally:
        for connection in hanging:
            connection.close()


def test_the_workers_write_to_one_database_at_once(server, make):
    url = server.url
    """``make run`` serves SQLite with two worker processes: their writes wait for each
    other's locks rather than fail (on the PostgreSQL run, the same over PostgreSQL)."""
    email = make.user("developer")
    session = requests.Session()
    assert session.post(f"{url}/api/session", json={"email": email, "password": PASSWORD}).status_code == 200
    cookies = session.cookies.get_dict()

    def create(i: int) -> int:
        body = {"name": f"App {i}"}
        headers = {"Connection": "close"}  # a new connection each: any worker may take it
        return requests.post(
            f"{url}/api/apps", json=body, cookies=cookies, headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(create, range(24)))
    assert statuses == [201] * 24
    assert len(session.get(f"{url}/api/apps").json()) == 24


def test_an_export_started_on_it_completes(server, app, make, client):
    """``make run`` runs an export worker beside the server: a newcomer's export finishes."""
    from tests.bulk.conftest import KICKOFF, bearer, load_patients, poll

    make.hospital("general")
    load_patients(app, "general", 2)
    auth = bearer(client, make.api_key("general", permissions=["system/*.rs"]))
    kickoff = f"{server.url}/fhir/general/Patient/$export"
    started = requests.get(kickoff, headers={**KICKOFF, **auth}, timeout=10)
    assert started.status_code == 202, started.text
    status = started.headers["Content-Location"].replace(BASE_URL, server.url)
    done = poll(requests.get, status, auth, timeout=60)
    assert done.status_code == 200, done.text
    patients = [entry for entry in done.json()["output"] if entry["type"] == "Patient"]
    assert [entry["count"] for entry in patients] == [2]
    assert server.interrupt(within_s=15), "make run's server or worker still running 15 s after Ctrl-C"
