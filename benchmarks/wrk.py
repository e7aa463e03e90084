"""``wrk`` (from apt) as the load generator: one thread, keep-alive, a Lua script per target."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class Cell:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int  # answered in the run
    seconds: float  # the run's duration as wrk measured it


def wrk(url: str, connections: int, seconds: float, script: Path, env: dict[str, str] | None = None) -> Cell:
    """One run of ``wrk -t1 -c<connections>`` against ``url``; non-2xx answers count as errors."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url]
    out = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=seconds + 60
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    if not (rate and p50 and p99 and total):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    count = int(errors.group(1)) if errors else 0
    if socket_errors and re.search(r"(connect|read|write|timeout) [1-9]", socket_errors.group(0)):
        count += 1
    return Cell(
        float(rate.group(1)),
        float(p50.group(1)) * _UNITS[p50.group(2)],
        float(p99.group(1)) * _UNITS[p99.group(2)],
        count,
        int(total.group(1)),
        float(total.group(2)) * _UNITS[total.group(3)] / 1e3,
    )


def median_cell(cells: list[Cell]) -> Cell:
    """The run with the median rate (its latencies belong with it)."""
    return sorted(cells, key=lambda cell: cell.rate)[len(cells) // 2]
