"""Real sockets for tests: the app in a werkzeug thread, or under gunicorn with workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass
class Served:
    url: str
    process: subprocess.Popen  # make, leader of a process group of its own

    def interrupt(self, within_s: float) -> bool:
        """Ctrl-C, as in a terminal: SIGINT to the whole group; True if it all ended in time."""
        _signal_group(self.process.pid, signal.SIGINT)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            self.process.poll()  # reaps make once it has ended (a zombie still counts in the group)
            if not _signal_group(self.process.pid, 0):
                return True
            time.sleep(0.1)
        return False


@contextmanager
def make_run_server(app, log: Path, base_url: str | None = None):
    """The server exactly as ``make run`` starts it (``make serve``: the Makefile's ``SERVE``
    command, with this interpreter's scripts) on the test database, as a ``Served``; always
    stopped, in bounded time, with every process it started. ``base_url``: its public URL,
    by default the address it listens on."""
    port = free_port()
    base_url = base_url or f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "FHIRGATE_BASE_URL": base_url,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "FHIRGATE_KEK": app.config["FHIRGATE_KEK"],
        "FHIRGATE_EXPORT_DIR": str(log.parent / "exports"),
    }
    env.pop("PYTHONPATH", None)
    env.pop("REDIS_URL", None)
    env.pop("MAKEFLAGS", None)
    command = ["make", "--no-print-directory", "-s", "serve"]
    command += [f"BIN={Path(sys.executable).parent}", "HOST=127.0.0.1", f"PORT={port}"]
    with log.open("wb") as output:
        # A session of its own: stopping the group stops make, granian and its workers.
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"make serve exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"make serve did not answer within 60 s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Served(url, process)
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group (make, granian, its workers); SIGKILL to whatever is left
    of it after 8 s (granian kills workers that have not stopped after 5)."""
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and _signal_group(process.pid, 0):
        process.poll()  # reaps make once it has ended (a zombie still counts as in the group)
        time.sleep(0.1)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _signal_group(group: int, sig: int) -> bool:
    """Send ``sig`` to the group; False when no process of it is left."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        return False
    return True


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


def export_worker(app, **settings) -> subprocess.Popen:
    """``fhirgate worker`` as production starts it, on the test database and the test app's
    export directory; ``settings`` are FHIRGATE_EXPORT_* values (``LEASE_S=2``). The caller
    stops it (``stop_process``)."""
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "FHIRGATE_BASE_URL": app.config["FHIRGATE_BASE_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "FHIRGATE_KEK": app.config["FHIRGATE_KEK"],
        "FHIRGATE_EXPORT_DIR": str(app.extensions["fhirgate_export_storage"].root),
        **{f"FHIRGATE_EXPORT_{name}": str(value) for name, value in settings.items()},
    }
    env.pop("PYTHONPATH", None)
    env.pop("REDIS_URL", None)
    fhirgate = str(Path(sys.executable).with_name("fhirgate"))
    return subprocess.Popen(
        [fhirgate, "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def stop_process(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not ended in time; always reaped."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    if process.stderr is not None:
        process.stderr.close()
