"""One client or one hospital cannot starve the rest (issue 17): a load test.

The production server (granian, README's command, ``BENCH_FAIR_WORKERS`` workers) on its own
PostgreSQL database, with the production limits (nothing lifted). The sandbox hospital holds
``BENCH_FAIR_PATIENTS`` synthetic patients; another hospital, ``general``, a few. Four heavy
clients (hospital API keys of the sandbox, one ``wrk -t1 -c1`` each) send, round and round, the
heaviest searches, ``$everything`` and batch Bundles the limits allow; a fifth client (a key of
``general``) reads ``Patient/{id}`` with one keep-alive connection. Its read latency is
measured alone (``BENCH_FAIR_WARM_S``), then for ``BENCH_FAIR_SECONDS`` under the load; the
target is a loaded p95 within 3x the unloaded one, and no worker's memory (RSS) growing by
more than 100 MB. Heavy clients wait out ``Retry-After`` as a well-behaved client does; with
``BENCH_FAIR_HOSTILE=1`` they ignore it and send again at once.

    make bench-fairness                         # 1,000 patients, 30 s under load
    make bench-fairness BENCH_FAIR_HOSTILE=1    # clients that ignore Retry-After
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

import app  # noqa: F401  (puts this repository's ``fhir`` package first on sys.path)
from benchmarks.server import ROOT, free_port, granian
from benchmarks.settings import KEK, SECRET_KEY

DATABASE = "fhirgate_fairness"
SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
TARGET_RATIO = 3.0
MEMORY_LIMIT_MB = 100
HEAVY_CLIENTS = 4
READER_RATE = float(os.environ.get("BENCH_FAIR_READER_RATE", "100"))  # reads a second, paced

# The heaviest requests the search cost bound (100 units) and the Bundle limits allow.
SORT_ALL = "_sort=-date,code,-value-quantity,status,-_lastUpdated"
REVINCLUDES = "&".join(
    f"_revinclude={source}:{param}"
    for source, param in [
        ("Observation", "subject"), ("Condition", "subject"), ("Encounter", "subject"),
        ("MedicationRequest", "subject"), ("Procedure", "subject"), ("Immunization", "patient"),
        ("DiagnosticReport", "subject"), ("AllergyIntolerance", "patient"), ("CarePlan", "subject"),
        ("Claim", "patient"),
    ]
)  # fmt: skip
HEAVY_SEARCHES = [
    f"Observation?_count=1000&{SORT_ALL}&_include=Observation:subject&_include=Observation:encounter"
    "&_revinclude=Provenance:target",
    "Observation?subject:Patient.name:contains=a&_count=1000&_sort=-date&_include=Observation:subject",
    f"Patient?_count=1000&{REVINCLUDES}",
    "Observation?value-quantity=gt0&code:not=x,y,z&status:not=cancelled&_count=1000&_sort=-value-quantity",
]
# A batch asks for at most 5,000 resources (fhir/response_size.py): five searches of 1,000.
BATCH_ENTRIES = int(os.environ.get("BENCH_FAIR_BATCH_ENTRIES", "5"))


@dataclass(frozen=True)
class Latency:
    requests: int
    failures: int
    p50: float
    p95: float
    p99: float


def say(message: str) -> None:
    print(message, flush=True)


def _admin() -> psycopg.Connection:
    return psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=10)


def _fhirgate(env: dict[str, str], *args: str) -> str:
    command = [str(Path(sys.executable).with_name("fhirgate")), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"fhirgate {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def _prepare(env: dict[str, str], patients: int) -> None:
    """The database, its hospitals and data."""
    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    _fhirgate(env, "db", "upgrade")
    started = time.perf_counter()
    _fhirgate(env, "sandbox", "seed", "--patients", str(patients))
    say(f"seeded {patients} patients in {time.perf_counter() - started:.0f} s")
    _fhirgate(env, "hospital", "create", "general", "--name", "General")
    with psycopg.connect(f"{SERVER}/{DATABASE}", autocommit=True) as conn:
        conn.execute("ANALYZE")


_CLIENTS = """
import json, sys
from app import create_app
from app.extensions import db
from fhir.storage.sql import SqlRepository
from oauth import create_hospital_key
app = create_app()
with app.app_context():
    repo = SqlRepository(db.session, "general")
    ids = [f"g{n}" for n in range(200)]
    for pid in ids:
        repo.update("Patient", pid, {"resourceType": "Patient", "id": pid, "name": [{"family": "Reader"}]})
    db.session.commit()
    def token(hospital, name):
        made = create_hospital_key(hospital, name, ["system/*.rs"], token_ttl=86400,
                                   require_key_headers=False, owner_user_id=None)
        return made.token.access_token
    heavy = [token("sandbox", f"heavy {n}") for n in range(int(sys.argv[1]))]
    print(json.dumps({"heavy": heavy, "reader": token("general", "reader"), "ids": ids}))
"""


def _clients(env: dict[str, str]) -> dict:
    """Five hospital API keys' tokens (for this run's base URL) and the reader's patients."""
    out = subprocess.run(
        [sys.executable, "-c", _CLIENTS, str(HEAVY_CLIENTS)], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def _reader_script(folder: Path, token: str, ids: list[str]) -> Path:
    script = folder / "reader.lua"
    script.write_text(
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        "local ids = {" + ",".join(f'"{i}"' for i in ids) + "}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        '  return wrk.format("GET", "/fhir/general/Patient/" .. ids[n % #ids + 1])\n'
        "end\n"
        f"delay = function() return {1000 / READER_RATE:g} end\n"
        "done = function(summary, latency, requests)\n"
        "  local failed = summary.errors.status + summary.errors.connect + summary.errors.read"
        " + summary.errors.write + summary.errors.timeout\n"
        '  io.write(string.format("RESULT %d %d %.3f %.3f %.3f\\n", summary.requests, failed,'
        " latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))\n"
        "end\n"
    )
    return script


def _heavy_script(folder: Path, n: int, token: str, honour: bool) -> Path:
    batch = json.dumps(
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"Observation?_count=1000&_sort=-date&_id:not=x{i}"}}
                for i in range(BATCH_ENTRIES)
            ],
        }
    )
    requests = [("GET", f"/fhir/sandbox/{path}", "") for path in HEAVY_SEARCHES]
    requests.append(("GET", "/fhir/sandbox/Patient/sb0-p0/$everything?_count=1000", ""))
    requests.append(("POST", "/fhir/sandbox", batch))
    table = ",".join("{" + ",".join(_lua_string(part) for part in request) + "}" for request in requests)
    script = folder / f"heavy{n}.lua"
    script.write_text(
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        'wrk.headers["Content-Type"] = "application/fhir+json"\n'
        f"local requests = {{{table}}}\n"
        f"local honour = {'true' if honour else 'false'}\n"
        f"local n = {n}\n"
        "local wait = 0\n"
        "local threads = {}\n"
        "setup = function(thread) table.insert(threads, thread) end\n"
        "statuses = {}\n"
        "request = function()\n"
        "  n = n + 1\n"
        "  local r = requests[n % #requests + 1]\n"
        '  return wrk.format(r[1], r[2], nil, r[3] ~= "" and r[3] or nil)\n'
        "end\n"
        "delay = function()\n"
        "  local ms = wait\n"
        "  wait = 0\n"
        "  return ms\n"
        "end\n"
        "response = function(status, headers, body)\n"
        "  statuses[status] = (statuses[status] or 0) + 1\n"
        '  if status == 429 and honour then wait = 1000 * tonumber(headers["Retry-After"] or "1") end\n'
        "end\n"
        "done = function(summary, latency, requests)\n"
        "  for _, thread in ipairs(threads) do\n"
        '    for status, count in pairs(thread:get("statuses")) do\n'
        '      io.write(string.format("STATUS %d %d\\n", status, count))\n'
        "    end\n"
        "  end\n"
        "end\n"
    )
    return script


def _wrk(url: str, script: Path, seconds: float) -> subprocess.Popen:
    command = ["wrk", "-t1", "-c1", f"-d{seconds:g}s", "--timeout", "30s", "-s", str(script), url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _latency(process: subprocess.Popen) -> Latency:
    out, _ = process.communicate(timeout=120)
    found = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    if not found:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    count, failed = int(found.group(1)), int(found.group(2))
    return Latency(count, failed, *(float(found.group(i)) for i in (3, 4, 5)))


def _workers(master_port: int) -> dict[int, int]:
    """RSS (kB) of each granian worker: the processes holding the listening socket's children."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,rss,args"], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines()[1:]]
    masters = {r[0] for r in rows if "granian" in r[3] and f"--port {master_port}" in r[3]}
    return {int(r[0]): int(r[2]) for r in rows if r[1] in masters}


def _heavy_statuses(url: str, folder: Path, tokens: list[str], honour: bool, seconds: float):
    return [_wrk(url, _heavy_script(folder, n, token, honour), seconds) for n, token in enumerate(tokens)]


def _status_counts(processes: list[subprocess.Popen]) -> dict[int, int]:
    """The heavy clients' answers by status, as their scripts counted them."""
    counts: dict[int, int] = {}
    for process in processes:
        out, _ = process.communicate(timeout=120)
        for status, count in re.findall(r"STATUS (\d+) (\d+)", out):
            counts[int(status)] = counts.get(int(status), 0) + int(count)
    return counts


def main() -> int:
    patients = int(os.environ.get("BENCH_FAIR_PATIENTS", "1000"))
    seconds = float(os.environ.get("BENCH_FAIR_SECONDS", "30"))
    warm = float(os.environ.get("BENCH_FAIR_WARM_S", "15"))
    workers = int(os.environ.get("BENCH_FAIR_WORKERS", "2"))
    honour = os.environ.get("BENCH_FAIR_HOSTILE", "0") in ("", "0")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FHIRGATE_", "REDIS_URL"))}
    env.update(
        DATABASE_URL=f"{SERVER.replace('postgresql://', 'postgresql+psycopg://', 1)}/{DATABASE}",
        FHIRGATE_ENV="production",
        FHIRGATE_BASE_URL=base,
        SECRET_KEY=SECRET_KEY,
        FHIRGATE_KEK=KEK,
    )
    clients = f"{HEAVY_CLIENTS} heavy clients ({'honouring' if honour else 'ignoring'} Retry-After)"
    say(f"fairness load test: {patients} patients, {clients}, {seconds:g} s, {workers} granian workers")
    keep = os.environ.get("BENCH_FAIR_KEEP", "0") not in ("", "0")
    with _admin() as conn:
        kept = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
    if not (keep and kept):  # BENCH_FAIR_KEEP=1: the database a last run kept
        _prepare(env, patients)
    data = _clients(env)
    # BENCH_FAIR_LIMIT=30000/minute: the sandbox's own limits, for a hospital given more than the
    # defaults (each client and the whole hospital); unset, the defaults hold.
    limit = os.environ.get("BENCH_FAIR_LIMIT", "default")
    _fhirgate(env, "hospital", "limits", "sandbox", "--client", limit, "--hospital", limit)
    say(f"the heavy clients' hospital: {limit} limits")
    log_path = ROOT / "benchmarks" / "results" / "fairness-granian.log"
    with tempfile.TemporaryDirectory() as scratch, granian(port, workers, env, log_path, "/healthz"):
        folder = Path(scratch)
        reader = _reader_script(folder, data["reader"], data["ids"])
        _latency(_wrk(base, reader, 3))  # warm every worker's caches
        alone = _latency(_wrk(base, reader, warm))
        before = _workers(port)
        heavy = _heavy_statuses(base, folder, data["heavy"], honour, seconds)
        loaded = _latency(_wrk(base, reader, seconds))
        statuses = _status_counts(heavy)
        after = _workers(port)
    ratio = loaded.p95 / alone.p95 if alone.p95 else float("inf")
    growth = {pid: (after.get(pid, 0) - rss) / 1024 for pid, rss in before.items()}
    say("")
    say("| reader GET Patient/{id} | requests | failed | p50 ms | p95 ms | p99 ms |")
    say("|---|---|---|---|---|---|")
    for name, cell in (("alone", alone), ("under load", loaded)):
        figures = f"{cell.p50:.2f} | {cell.p95:.2f} | {cell.p99:.2f}"
        say(f"| {name} | {cell.requests:,} | {cell.failures} | {figures} |")
    say("")
    verdict = "ok" if ratio <= TARGET_RATIO else "MISSED"
    say(f"p95 under load / alone: {ratio:.2f} (target <= {TARGET_RATIO:g}): {verdict}")
    say(f"heavy clients' answers by status: {dict(sorted(statuses.items()))}")
    for pid, grown in sorted(growth.items()):
        rss = f"{before[pid] / 1024:.0f} -> {after.get(pid, 0) / 1024:.0f} MB"
        say(f"worker {pid}: RSS {rss} ({grown:+.0f} MB)")
    worst = max(growth.values(), default=0.0)
    say(f"largest worker growth {worst:+.0f} MB (target <= {MEMORY_LIMIT_MB}): "
        f"{'ok' if worst <= MEMORY_LIMIT_MB else 'MISSED'}")  # fmt: skip
    if not keep:
        with _admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    return 0 if ratio <= TARGET_RATIO and worst <= MEMORY_LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
