"""gunicorn or granian as a subprocess on 127.0.0.1, started from the repository root and always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# fhirgate's production setup for the token endpoint, chosen by measurement (README,
# "Performance"): granian's WSGI interface, two Python threads per worker (one kept free of
# heavy requests, app/lanes.py; BENCH_GRANIAN_THREADS to measure another count) on a single-threaded
# Rust runtime, HTTP/1.1 with keep-alive.
GRANIAN_OPTIONS = (
    *("--interface", "wsgi", "--http", "1", "--no-ws"),
    *("--runtime-mode", "st", "--blocking-threads", os.environ.get("BENCH_GRANIAN_THREADS", "2")),
)


@contextlib.contextmanager
def gunicorn(
    port: int, workers: int, env: dict[str, str], log_path: Path, ready_path: str = "/fhir/sandbox/metadata"
) -> Iterator[str]:
    """Serve ``wsgi:app`` under gunicorn; yield the base URL once it answers; stop it whatever happens."""
    gunicorn_bin = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn_bin, "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    usage = subprocess.run([gunicorn_bin, "--help"], capture_output=True, text=True).stdout
    if "--no-control-socket" in usage:
        # gunicorn 24+ opens a control socket at ~/.gunicorn/gunicorn.ctl, shared with any other
        # gunicorn on the machine (make run, other benchmarks); the benchmark needs none.
        command.insert(1, "--no-control-socket")
    with _served("gunicorn", command, port, env, log_path, ready_path) as base:
        yield base


@contextlib.contextmanager
def granian(port: int, workers: int, env: dict[str, str], log_path: Path, ready_path: str) -> Iterator[str]:
    """Serve ``wsgi:app`` under granian (``GRANIAN_OPTIONS``), like ``gunicorn``."""
    granian_bin = str(Path(sys.executable).with_name("granian"))
    command = [granian_bin, *GRANIAN_OPTIONS, "--workers", str(workers), "--host", "127.0.0.1",
               "--port", str(port), "wsgi:app"]  # fmt: skip
    with _served("granian", command, port, env, log_path, ready_path) as base:
        yield base


@contextlib.contextmanager
def _served(name: str, command: list[str], port: int, env: dict[str, str], log_path: Path, ready_path: str):
    base = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{_tail(log_path)}")
            try:
                if requests.get(f"{base}{ready_path}", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer within {START_TIMEOUT_S} s:\n{_tail(log_path)}")
            time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)


def server_env(
    database_url: str, base_url: str, secret_key: str, kek: str, limit: str, token_ttl: int
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FHIRGATE_")}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url,
        FHIRGATE_BASE_URL=base_url,
        SECRET_KEY=secret_key,
        FHIRGATE_KEK=kek,
        FHIRGATE_TOKEN_RATE_LIMIT=limit,
        FHIRGATE_AUTH_FAILURE_LIMIT=limit,
        FHIRGATE_LOGIN_FAILURE_LIMIT=limit,
        FHIRGATE_FHIR_CLIENT_LIMIT=limit,
        FHIRGATE_FHIR_HOSPITAL_LIMIT=limit,
        FHIRGATE_TOKEN_TTL=str(token_ttl),
    )
    return env
