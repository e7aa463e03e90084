"""The Bulk Data export in ``make bench``: a system ``$export`` of the whole data set, run by a
``fhirgate worker`` process as production runs it, timed from the kick-off to the manifest, and
that worker's memory (its peak resident set, VmHWM, against its size once idle before the job):
the export streams, so the peak must not grow with the data set."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.server import ROOT

TARGET_RATE = 20_000  # resources/s, kick-off to the last file
POLL_S = 0.02
TIMEOUT_S = 1800


@dataclass
class ExportRun:
    resources: int
    files: int
    seconds: float
    idle_mib: float
    peak_mib: float
    complete: bool  # every stored resource exported once

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


def _memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(
    client, env: dict[str, str], fhir_path: str, headers: dict, expected: int, folder: Path
) -> ExportRun:
    """Start a worker, kick off, poll until the manifest, read the worker's memory, stop it."""
    env = {**env, "FHIRGATE_EXPORT_DIR": str(folder)}
    fhirgate = str(Path(sys.executable).with_name("fhirgate"))
    worker = subprocess.Popen(
        [fhirgate, "worker"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        worker.stdout.readline()  # "export worker … waiting for jobs": it listens for kick-offs
        time.sleep(0.5)
        idle = _memory_mib(worker.pid, "VmRSS")
        kickoff = {**headers, "Prefer": "respond-async"}
        started = time.perf_counter()
        answer = client.get(f"{fhir_path}/$export", headers=kickoff)
        if answer.status_code != 202:
            raise RuntimeError(
                f"$export kick-off answered {answer.status_code}: {answer.get_data(as_text=True)}"
            )
        status = answer.headers["Content-Location"].split(fhir_path, 1)[1]
        deadline = started + TIMEOUT_S
        while (done := client.get(f"{fhir_path}{status}", headers=headers)).status_code == 202:
            if time.perf_counter() > deadline:
                raise RuntimeError("the export did not finish in time")
            time.sleep(POLL_S)
        seconds = time.perf_counter() - started
        if done.status_code != 200:
            raise RuntimeError(
                f"the export ended with {done.status_code}: {done.get_data(as_text=True)[:500]}"
            )
        peak = _memory_mib(worker.pid, "VmHWM")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        worker.stdout.close()
    manifest = done.get_json()
    exported = sum(entry["count"] for entry in manifest["output"])
    return ExportRun(exported, len(manifest["output"]), seconds, idle, peak, exported == expected)


def section(run: ExportRun | None) -> list[str]:
    if run is None:
        return []
    return [
        "",
        "Bulk export: GET /$export (system/*.cruds: every type but the audit trail), one fhirgate worker"
        " process, kick-off to manifest (status polled every 20 ms)",
        f"  {run.resources:,} resources in {run.files} ndjson files in {run.seconds:.2f} s = {run.rate:,.0f}"
        f" resources/s{'' if run.complete else ' (INCOMPLETE: not every stored resource)'}",
        f"  worker memory: {run.idle_mib:,.0f} MiB idle before the job, peak {run.peak_mib:,.0f} MiB (VmHWM)",
    ]


TARGET_AT_PATIENTS = 1000  # the target is the 1,000-patient set's: a small set is all fixed costs


def summary(run: ExportRun | None, patients: int) -> list[str]:
    if run is None:
        return []
    verdict = "ok" if run.rate >= TARGET_RATE and run.complete else "NOT MET"
    if patients < TARGET_AT_PATIENTS:
        verdict = f"(judged at {TARGET_AT_PATIENTS:,} patients)" if run.complete else "INCOMPLETE"
    return [f"  {f'bulk export >= {TARGET_RATE:,} resources/s':<52}{run.rate:,.0f}/s {verdict}"]
