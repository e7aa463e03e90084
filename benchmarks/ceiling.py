"""A FHIR read against the ceiling of its own server setup: ``GET /healthz`` (a trivial Flask
endpoint) and ``GET Patient/{id}`` (seeded ids from the data set, one system token) under the
production server (granian, ``benchmarks.server``), driven by ``wrk`` at 4 keep-alive
connections; each the median of ``BENCH_CEILING_RUNS`` runs of ``BENCH_CEILING_SECONDS``.

granian's workers share one listening socket, and the first to wake takes what is waiting: in
about one run in five, all four of wrk's connections went to one worker, which then measured a
one-worker server (the trivial endpoint at ~1,600 req/s instead of ~2,600). Such a run (``ss``
sees one process holding every connection) is repeated, up to ``MAX_REPEATS`` times, for either
endpoint alike, and the repeats are reported.

Every read leaves an AuditEvent, stored by a writer thread in each worker after the answer; a
writer that falls behind would make the reads look faster than the server can sustain. A read
run therefore lasts until the database holds an AuditEvent for every read it answered, and its
rate counts that wait."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import psycopg

from benchmarks.server import GRANIAN_OPTIONS, free_port, granian
from benchmarks.wrk import Cell, median_cell, wrk

CONNECTIONS = 4
TARGET_RATIO = 0.6  # Patient/{id} req/s / GET /healthz req/s
MAX_IDS = 1000
AUDIT_WAIT_S = 120
AUDIT_POLL_S = 0.05
MAX_REPEATS = 3
LOOK_AFTER_S = 1.0  # into a run, when its connections are settled
T = TypeVar("T")


SEARCH_TARGET = 0.5  # each typical search's req/s / the read's, same run
READ_P99_TARGET_MS = 10.0


@dataclass(frozen=True)
class Ceiling:
    trivial: Cell
    read: Cell
    workers: int
    audit_wait_s: float  # after the median read run, until its last AuditEvent was stored
    repeats: tuple[int, int]  # runs repeated (trivial, read): one worker held every connection
    searches: tuple[tuple[str, Cell], ...] = ()  # typical searches, audited like the read

    @property
    def ratio(self) -> float:
        return self.read.rate / self.trivial.rate


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _read_script(folder: Path, fhir_path: str, token: str, patient_ids: list[str], seed: int) -> Path:
    ids = random.Random(seed).sample(patient_ids, min(MAX_IDS, len(patient_ids)))
    return _paths_script(folder / "read.lua", token, [f"{fhir_path}/Patient/{i}" for i in ids])


def _paths_script(script: Path, token: str, paths: list[str]) -> Path:
    """A wrk script that GETs ``paths`` in turn with the token."""
    script.write_text(
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        'wrk.headers["Accept"] = "application/fhir+json"\n'
        "local paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        '  return wrk.format("GET", paths[n % #paths + 1])\n'
        "end\n"
    )
    return script


class AuditTrail:
    """Counts the AuditEvents stored since a mark (the benchmark writes nothing else meanwhile),
    on one connection: a new one per poll would fork a backend on the cores being measured."""

    def __init__(self, connection: psycopg.Connection):
        self.connection = connection

    def _one(self, statement: str, *params) -> int:
        return self.connection.execute(statement, params).fetchone()[0]

    def mark(self) -> int:
        return self._one("SELECT coalesce(max(seq), 0) FROM fhir_history")

    def wait(self, mark: int, expected: int) -> float:
        """Seconds until ``expected`` AuditEvents after ``mark`` are stored."""
        started = time.perf_counter()
        query = "SELECT count(*) FROM fhir_history WHERE seq > %s AND resource_type = 'AuditEvent'"
        while self._one(query, mark) < expected:
            if time.perf_counter() - started > AUDIT_WAIT_S:
                raise RuntimeError(f"fewer than {expected} AuditEvents stored {AUDIT_WAIT_S} s after the run")
            time.sleep(AUDIT_POLL_S)
        return time.perf_counter() - started


def _serving_processes(port: int) -> int | None:
    """How many processes hold established connections to ``port``; None when ``ss`` is missing
    or shows no process (it names only processes of the same user)."""
    try:
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return len(set(re.findall(r"pid=(\d+)", out))) or None


def _spread(run: Callable[[], T], port: int, workers: int) -> tuple[T, int]:
    """``run``'s result, repeated while one worker held every connection; and the repeats."""
    for repeat in range(MAX_REPEATS + 1):
        seen: list[int | None] = []
        look = threading.Timer(LOOK_AFTER_S, lambda found=seen: found.append(_serving_processes(port)))
        look.start()
        result = run()
        look.join()
        processes = seen[0] if seen else None
        if processes is None or processes > 1 or workers == 1 or repeat == MAX_REPEATS:
            return result, repeat
    raise AssertionError("unreachable")


def _audited_read(trail: AuditTrail, url: str, seconds: float, script: Path) -> tuple[Cell, float]:
    """One read run whose rate counts the wait for its AuditEvents."""
    mark = trail.mark()
    cell = wrk(url, CONNECTIONS, seconds, script)
    # A refused request (a non-2xx answer: 429 when a worker's heavy slot was taken) is tallied
    # with the others refused in its minute (fhir.audit_tally), not stored as an event of its own.
    waited = trail.wait(mark, cell.requests - cell.errors)
    return replace(cell, rate=cell.requests / (cell.seconds + waited)), waited


def measure(
    env: dict[str, str],
    folder: Path,
    fhir_path: str,
    token: str,
    patient_ids: list[str],
    seed: int,
    workers: int,
    searches: dict[str, list[str]] | None = None,
) -> Ceiling | None:
    """``searches``: label → the paths to send in turn, measured after the read like it."""
    """None when wrk is not installed (``make bench`` installs it)."""
    if shutil.which("wrk") is None:
        return None
    runs, seconds = int(_number("BENCH_CEILING_RUNS", 3)), _number("BENCH_CEILING_SECONDS", 10)
    read = _read_script(folder, fhir_path, token, patient_ids, seed)
    trivial = folder / "trivial.lua"
    trivial.write_text('wrk.method = "GET"\n')
    dsn = env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
    port = free_port()
    with (
        psycopg.connect(dsn, autocommit=True, connect_timeout=10) as connection,
        granian(port, workers, env, folder / "granian.log", ready_path="/healthz") as base,
    ):
        trail = AuditTrail(connection)
        wrk(f"{base}/healthz", CONNECTIONS, min(seconds, 2), trivial)  # warm-up: connections, caches
        trivials = [
            _spread(lambda: wrk(f"{base}/healthz", CONNECTIONS, seconds, trivial), port, workers)
            for _ in range(runs)
        ]
        _audited_read(trail, f"{base}/", min(seconds, 2), read)  # warm-up
        reads = [
            _spread(lambda: _audited_read(trail, f"{base}/", seconds, read), port, workers)
            for _ in range(runs)
        ]
        trivial_cell = median_cell([cell for cell, _ in trivials])
        read_cell, waited = sorted((run for run, _ in reads), key=lambda run: run[0].rate)[len(reads) // 2]
        repeats = (sum(n for _, n in trivials), sum(n for _, n in reads))
        measured = []
        for n, (label, paths) in enumerate((searches or {}).items()):
            script = _paths_script(folder / f"search{n}.lua", token, paths)
            _audited_read(trail, f"{base}/", min(seconds, 2), script)  # warm-up
            run = lambda s=script: _audited_read(trail, f"{base}/", seconds, s)  # noqa: E731
            cells = [_spread(run, port, workers)[0][0] for _ in range(runs)]
            measured.append((label, median_cell(cells)))
    return Ceiling(trivial_cell, read_cell, workers, waited, repeats, tuple(measured))


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
        *(row(f"GET {label}", cell) for label, cell in ceiling.searches),
        f"  (a read run lasts until its last AuditEvent is stored: {ceiling.audit_wait_s:.2f} s after"
        " wrk's end in the median run, counted in its rate)",
        f"  (runs repeated because one worker held every connection: trivial {ceiling.repeats[0]},"
        f" read {ceiling.repeats[1]})",
    ]


def summary(ceiling: Ceiling | None) -> list[str]:
    if ceiling is None:
        return []
    ok = ceiling.ratio >= TARGET_RATIO and not ceiling.read.errors
    label = f"Patient/{{id}} >= {TARGET_RATIO:g}x the trivial endpoint"
    lines = [f"  {label:<52}{ceiling.ratio:.2f}x  {'ok' if ok else 'NOT MET'}"]
    p99_ok = ceiling.read.p99_ms < READ_P99_TARGET_MS
    label = f"Patient/{{id}} p99 < {READ_P99_TARGET_MS:g} ms at {CONNECTIONS} connections"
    lines.append(f"  {label:<52}{ceiling.read.p99_ms:.2f} ms  {'ok' if p99_ok else 'NOT MET'}")
    for name, cell in ceiling.searches:
        ratio = cell.rate / ceiling.read.rate
        ok = ratio >= SEARCH_TARGET and not cell.errors
        label = f"{name.split('?')[0]}?{name.split('?')[1][:24]} >= {SEARCH_TARGET:g}x the read"
        lines.append(f"  {label:<52}{ratio:.2f}x  {'ok' if ok else 'NOT MET'}")
    return lines
