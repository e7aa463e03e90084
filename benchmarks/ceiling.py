"""A FHIR read against the ceiling of its own server setup: ``GET /healthz`` (a trivial Flask
endpoint) and ``GET Patient/{id}`` (seeded ids from the data set, one system token) under the
production server (granian, ``benchmarks.server``), driven by ``wrk`` at 4 keep-alive
connections; each the median of ``BENCH_CEILING_RUNS`` runs of ``BENCH_CEILING_SECONDS``."""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from benchmarks.server import GRANIAN_OPTIONS, free_port, granian
from benchmarks.wrk import Cell, median_cell, wrk

CONNECTIONS = 4
TARGET_RATIO = 0.6  # Patient/{id} req/s / GET /healthz req/s
MAX_IDS = 1000


@dataclass(frozen=True)
class Ceiling:
    trivial: Cell
    read: Cell
    workers: int

    @property
    def ratio(self) -> float:
        return self.read.rate / self.trivial.rate


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _read_script(folder: Path, fhir_path: str, token: str, patient_ids: list[str], seed: int) -> Path:
    ids = random.Random(seed).sample(patient_ids, min(MAX_IDS, len(patient_ids)))
    script = folder / "read.lua"
    script.write_text(
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        'wrk.headers["Accept"] = "application/fhir+json"\n'
        "local ids = {" + ",".join(f'"{i}"' for i in ids) + "}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        f'  return wrk.format("GET", "{fhir_path}/Patient/" .. ids[n % #ids + 1])\n'
        "end\n"
    )
    return script


def measure(
    env: dict[str, str],
    folder: Path,
    fhir_path: str,
    token: str,
    patient_ids: list[str],
    seed: int,
    workers: int,
) -> Ceiling | None:
    """None when wrk is not installed (``make bench`` installs it)."""
    if shutil.which("wrk") is None:
        return None
    runs, seconds = int(_number("BENCH_CEILING_RUNS", 3)), _number("BENCH_CEILING_SECONDS", 5)
    read = _read_script(folder, fhir_path, token, patient_ids, seed)
    trivial = folder / "trivial.lua"
    trivial.write_text('wrk.method = "GET"\n')
    port = free_port()
    with granian(port, workers, env, folder / "granian.log", ready_path="/healthz") as base:
        cells = {}
        for name, url, script in (("trivial", f"{base}/healthz", trivial), ("read", f"{base}/", read)):
            wrk(url, CONNECTIONS, min(seconds, 2), script)  # warm-up: connections, caches
            cells[name] = median_cell([wrk(url, CONNECTIONS, seconds, script) for _ in range(runs)])
    return Ceiling(cells["trivial"], cells["read"], workers)


def section(ceiling: Ceiling | None) -> list[str]:
    if ceiling is None:
        return ["", "Read vs the server's ceiling: skipped (wrk is not installed)"]

    def row(label: str, cell: Cell) -> str:
        errors = f"  ({cell.errors} errors)" if cell.errors else ""
        latency = f"p50 {cell.p50_ms:6.2f} ms  p99 {cell.p99_ms:7.2f} ms"
        return f"  {label:<34} {cell.rate:>8,.0f}/s  {latency}{errors}"

    return [
        "",
        f"Read vs the server's ceiling: granian {' '.join(GRANIAN_OPTIONS)} --workers {ceiling.workers},"
        f" wrk -t1 -c{CONNECTIONS} keep-alive",
        row("GET /healthz (trivial endpoint)", ceiling.trivial),
        row("GET Patient/{id} (system token)", ceiling.read),
    ]


def summary(ceiling: Ceiling | None) -> list[str]:
    if ceiling is None:
        return []
    ok = ceiling.ratio >= TARGET_RATIO and not ceiling.read.errors
    label = f"Patient/{{id}} >= {TARGET_RATIO:g}x the trivial endpoint"
    return [f"  {label:<52}{ceiling.ratio:.2f}x  {'ok' if ok else 'NOT MET'}"]
