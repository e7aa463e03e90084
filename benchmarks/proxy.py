"""A read through an EHR integration against the same read sent straight to the EHR (issue 21).

The "EHR" is fhirgate itself on the benchmark's database (granian, as production runs it). A
second fhirgate process, on a database of its own (``<BENCH_DB>_proxy``, dropped at the end),
connects hospital ``north`` to it by client credentials with a hospital API key of the sandbox;
a developer's application switches the integration on with that key and gets a token (which
carries its integration key). Then ``wrk -t1 -c4`` reads the same ``Patient/{id}`` ids straight
from the EHR and through the proxy, alternating, ``BENCH_CEILING_RUNS`` runs of
``BENCH_CEILING_SECONDS`` each; the median of each. Both servers audit every read, and a run
lasts until every AuditEvent it caused is stored (the proxy's, and the EHR's for the forwarded
read), as in ``benchmarks.ceiling``. Target: the proxy keeps at least 0.6x the direct rate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import requests

from benchmarks.ceiling import CONNECTIONS, AuditTrail, _number, _read_script
from benchmarks.server import ROOT, free_port, granian
from benchmarks.wrk import Cell, median_cell, wrk

TARGET = 0.6
PROXIED_HOSPITAL = "north"
DEVELOPER = "bench-developer@example.org"
DEVELOPER_PASSWORD = "benchmark developer password"


@dataclass(frozen=True)
class ProxyFigures:
    direct: Cell
    proxied: Cell

    @property
    def ratio(self) -> float:
        return self.proxied.rate / self.direct.rate


def _fhirgate(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    command = [str(Path(sys.executable).with_name("fhirgate")), *args]
    done = subprocess.run(
        command, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"fhirgate {args[0]} {args[1] if len(args) > 1 else ''} failed: {done.stderr[-1000:]}"
        )


def _proxy_database(dsn: str, name: str) -> str:
    """A fresh database for the proxy beside the benchmark's; its URL."""
    server = dsn.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


def _drop_database(dsn: str, name: str) -> None:
    server = dsn.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _application_token(base: str, key: dict) -> str:
    """A developer's application in the proxy, switched on with the EHR key; its token."""
    session = requests.Session()
    login = session.post(f"{base}/api/session", json={"email": DEVELOPER, "password": DEVELOPER_PASSWORD})
    login.raise_for_status()
    app = session.post(f"{base}/api/apps", json={"name": "Proxy benchmark"}).json()
    switched = session.put(
        f"{base}/api/apps/{app['client_id']}/integrations/{PROXIED_HOSPITAL}",
        json={"credentials": {"client_id": key["key"], "client_secret": key["secret"]},
              "client_secret": app["client_secret"]},
    )  # fmt: skip
    switched.raise_for_status()
    token = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "resource": f"{base}/fhir/{PROXIED_HOSPITAL}"},
        auth=(app["client_id"], app["client_secret"]),
    )
    token.raise_for_status()
    return token.json()["access_token"]


def _run(trails: list[AuditTrail], url: str, seconds: float, script: Path) -> Cell:
    """A read run whose rate counts the wait for every AuditEvent it caused (one a read in each
    database of ``trails``)."""
    marks = [trail.mark() for trail in trails]
    cell = wrk(url, CONNECTIONS, seconds, script)
    answered = cell.requests - cell.errors
    waited = sum(trail.wait(mark, answered) for trail, mark in zip(trails, marks, strict=True))
    return replace(cell, rate=cell.requests / (cell.seconds + waited))


def measure(
    env: dict[str, str],
    folder: Path,
    ehr_key: dict,
    token: str,
    patient_ids: list[str],
    seed: int,
    workers: int,
) -> ProxyFigures | None:
    """``ehr_key``: a sandbox API key (``key``, ``secret``) with ``system/Patient.rs`` at least;
    ``token``: a system token of the sandbox, for the direct reads. None without ``wrk``."""
    if shutil.which("wrk") is None:
        return None
    runs, seconds = int(_number("BENCH_CEILING_RUNS", 3)), _number("BENCH_CEILING_SECONDS", 10)
    dsn = env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
    proxy_db = dsn.rsplit("/", 1)[1] + "_proxy"
    ehr_port, proxy_port = free_port(), free_port()
    proxy_env = {
        **env,
        "DATABASE_URL": _proxy_database(dsn, proxy_db),
        "FHIRGATE_BASE_URL": f"http://127.0.0.1:{proxy_port}",
    }
    try:
        _fhirgate(proxy_env, "db", "upgrade")
        _fhirgate(proxy_env, "hospital", "create", PROXIED_HOSPITAL, "--name", "North (EHR)")
        _fhirgate(proxy_env, "user", "create", DEVELOPER, "--role", "developer", "--password-stdin",
                  stdin=DEVELOPER_PASSWORD)  # fmt: skip
        _fhirgate(
            proxy_env, "hospital", "connect", PROXIED_HOSPITAL,
            "--base-url", f"http://127.0.0.1:{ehr_port}/fhir/sandbox", "--auth", "client-secret",
            "--token-url", f"http://127.0.0.1:{ehr_port}/oauth/token", "--scope", "system/Patient.rs",
        )  # fmt: skip
        direct_script = _read_script(folder, "/fhir/sandbox", token, patient_ids, seed)
        with (
            psycopg.connect(dsn, autocommit=True) as ehr_db,
            psycopg.connect(proxy_env["DATABASE_URL"].replace("+psycopg", ""), autocommit=True) as proxy_dbc,
            granian(ehr_port, workers, env, folder / "ehr-granian.log", ready_path="/healthz") as ehr,
            granian(
                proxy_port, workers, proxy_env, folder / "proxy-granian.log", ready_path="/healthz"
            ) as proxy,
        ):
            app_token = _application_token(proxy, ehr_key)
            (folder / "proxied").mkdir(exist_ok=True)
            proxied_script = _read_script(
                folder / "proxied", f"/fhir/{PROXIED_HOSPITAL}", app_token, patient_ids, seed
            )
            ehr_trail, proxy_trail = AuditTrail(ehr_db), AuditTrail(proxy_dbc)
            _run([ehr_trail], f"{ehr}/", min(seconds, 2), direct_script)  # warm-up
            _run([proxy_trail, ehr_trail], f"{proxy}/", min(seconds, 2), proxied_script)
            direct, proxied = [], []
            for _ in range(runs):
                direct.append(_run([ehr_trail], f"{ehr}/", seconds, direct_script))
                proxied.append(_run([proxy_trail, ehr_trail], f"{proxy}/", seconds, proxied_script))
    finally:
        _drop_database(dsn, proxy_db)
    return ProxyFigures(median_cell(direct), median_cell(proxied))


def section(figures: ProxyFigures | None) -> list[str]:
    if figures is None:
        return ["", "Proxied read (EHR integration): skipped (wrk is not installed)"]

    def row(label: str, cell: Cell) -> str:
        errors = f"  ({cell.errors} errors)" if cell.errors else ""
        latency = f"p50 {cell.p50_ms:6.2f} ms  p99 {cell.p99_ms:7.2f} ms"
        return f"  {label:<44} {cell.rate:>8,.0f}/s  {latency}{errors}"

    return [
        "",
        "Proxied read (issue 21): the same Patient/{id} straight from the EHR (fhirgate on this database)"
        f" and through a second fhirgate's connected hospital, both under granian, wrk -t1 -c{CONNECTIONS};",
        "  each run lasts until every AuditEvent it caused is stored (the proxy's and the EHR's)",
        row("GET Patient/{id} straight from the EHR", figures.direct),
        row("GET Patient/{id} through the proxy", figures.proxied),
    ]


def summary(figures: ProxyFigures | None) -> list[str]:
    if figures is None:
        return []
    ok = figures.ratio >= TARGET and not figures.proxied.errors and not figures.direct.errors
    label = f"proxied Patient/{{id}} >= {TARGET:g}x the direct read"
    return [f"  {label:<52}{figures.ratio:.2f}x  {'ok' if ok else 'NOT MET'}"]
