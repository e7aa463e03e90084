"""Real sockets for tests: the app in a werkzeug thread, or under gunicorn with workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def threaded_server(wsgi_app, on_port=None):
    """Serve ``wsgi_app`` on 127.0.0.1 (a free port) in background threads; yield its URL.

    ``on_port(url)`` runs before the first request is served (to configure the base URL).
    """
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    if on_port is not None:
        on_port(url)
    thread = threading.Thread(target=server.serve_forever, name=f"test-server-{url}", daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=TIMEOUT)


@contextmanager
def gunicorn_server(app, access_log: Path, workers: int, base_url: str):
    """``wsgi:app`` under gunicorn on the test database; the access log line is
    ``<worker pid> <status>`` so a test can tell which worker answered."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "FHIRGATE_BASE_URL": base_url,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "FHIRGATE_KEK": app.config["FHIRGATE_KEK"],
        "FHIRGATE_TOKEN_RATE_LIMIT": "100000/minute",
        "FHIRGATE_AUTH_FAILURE_LIMIT": "100000/minute",
        "FHIRGATE_FHIR_CLIENT_LIMIT": "1000000/minute",
        "FHIRGATE_FHIR_HOSPITAL_LIMIT": "1000000/minute",
    }
    env.pop("PYTHONPATH", None)
    gunicorn_bin = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn_bin, "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    command += ["--access-logfile", str(access_log), "--access-logformat", "%(p)s %(s)s"]
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
            raise RuntimeError("gunicorn did not start within 30 s")
        _until_every_worker_answers(f"http://127.0.0.1:{port}", access_log, workers, deadline)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _until_every_worker_answers(url: str, access_log: Path, workers: int, deadline: float) -> None:
    """The first answer comes from the first worker up; a test spreading requests over workers
    needs them all: one still loading the app leaves its share to the others."""

    def probe(_) -> None:
        requests.get(f"{url}/healthz", headers={"Connection": "close"}, timeout=5)

    with ThreadPoolExecutor(2 * workers) as pool:
        while time.monotonic() < deadline:
            list(pool.map(probe, range(2 * workers)))
            time.sleep(0.05)  # the access log's lines
            if len({pid for pid, _ in served_by(access_log)}) >= workers:
                return
    raise RuntimeError(f"not every one of {workers} gunicorn workers answered within 30 s")


def served_by(access_log: Path) -> list[tuple[str, str]]:
    """``(worker pid, status)`` of every request in a ``gunicorn_server`` access log."""
    return [tuple(line.split()[:2]) for line in access_log.read_text().splitlines() if line.strip()]


class JwksHost:
    """A client's key host: serves ``jwks`` at ``/jwks.json`` with chosen headers, counting fetches."""

    def __init__(self):
        self.jwks: dict = {"keys": []}
        self.headers = {"Cache-Control": "max-age=300"}
        self.status = 200
        self.body: bytes | None = None  # served instead of ``jwks`` when set
        self.delay_s = 0.0
        self.fetches = 0
        self.url = ""

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] != "/jwks.json":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not here"]
        self.fetches += 1
        time.sleep(self.delay_s)
        body = self.body if self.body is not None else json.dumps(self.jwks).encode()
        headers = [("Content-Type", "application/json"), *self.headers.items()]
        start_response(f"{self.status} Status", headers)
        return [body]


@contextmanager
def jwks_host():
    host = JwksHost()
    with threaded_server(host) as url:
        host.url = f"{url}/jwks.json"
        yield host
