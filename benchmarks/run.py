"""``make bench``: load the sandbox data set into PostgreSQL through transaction Bundles, then time
reads and typical searches, in process (Flask test client) and over a socket (gunicorn), the
same reads and searches with patient tokens against the system token (authorization overhead),
and a Patient read against the trivial endpoint of the production server setup (``ceiling``).

Every figure is measured from the client's side of one request: the test client's call into the
WSGI app, or a round trip to 127.0.0.1 (``requests.Session`` for the Bundle POSTs, ``http.client``
for reads and searches unless BENCH_HTTP_CLIENT=requests). Knobs are the ``BENCH_*`` environment
variables of ``benchmarks/settings.py`` (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import logging
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import app  # noqa: F401  (puts this repository's ``fhir`` package first on sys.path)
from benchmarks import audit_view, authz, ceiling, database, export, proxy, report
from benchmarks.dataset import Dataset, Scenario, build, scenarios, typical_searches
from benchmarks.measure import (
    Call,
    Sender,
    SenderFactory,
    Stats,
    inprocess_sender,
    lean_sender_factory,
    run,
    socket_sender_factory,
)
from benchmarks.server import ROOT, free_port, gunicorn, server_env
from benchmarks.settings import (
    AUTH_RATIO_LIMIT,
    HIGH_LIMIT,
    HOSPITAL,
    KEK,
    SECRET_KEY,
    TOKEN_TTL,
    Settings,
    SettingsError,
    load,
)

RESULTS = ROOT / "benchmarks" / "results"
INGEST_MAX_SECONDS = 3600.0
SOCKET_TIMEOUT_S = 300.0
CLIENTS = {"http.client": "http.client", "requests": "requests.Session"}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def _configure_environment(settings: Settings, base_url: str) -> None:
    """The in-process app reads the same environment the gunicorn workers get."""
    for key in [k for k in os.environ if k.startswith("FHIRGATE_")] + ["REDIS_URL"]:
        os.environ.pop(key, None)
    os.environ.update(server_env(settings.database_url, base_url, SECRET_KEY, KEK, HIGH_LIMIT, TOKEN_TTL))


def _prepare(flask_app) -> str:
    """Schema by the Alembic migrations, the sandbox hospital and a system/*.cruds API key's token."""
    from flask_migrate import upgrade

    from app.accounts import create_hospital
    from oauth import create_hospital_key

    with flask_app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        create_hospital(HOSPITAL, "Sandbox Hospital (benchmark data)")
        new = create_hospital_key(
            HOSPITAL,
            "benchmark",
            ["system/*.cruds"],
            token_ttl=flask_app.config["FHIRGATE_API_KEY_TOKEN_TTL"],
            require_key_headers=False,
            owner_user_id=None,
        )
        return new.token.access_token


def _ingest(stats: Stats, data: Dataset, bundles: range, senders: list[Sender], path: str) -> Stats:
    calls = [Call(path, data.bundles[i][1], data.bundles[i][0]) for i in bundles]
    step = max(1, len(calls) // 10)

    def progress(done: int) -> None:
        if done % step == 0 or done == len(calls):
            say(f"  {stats.mode}: {done}/{len(calls)} bundles")

    return run(stats, calls, senders, INGEST_MAX_SECONDS, progress)


def _measure(settings: Settings, scenario: Scenario, mode: str, senders: list[Sender]) -> Stats:
    def calls(tag: str, count: int) -> list[Call]:
        # str seeds hash the same in every process: the same requests each run
        rng = random.Random(f"{settings.seed}/{scenario.label}/{mode}/{tag}")  # noqa: S311
        return [Call(scenario.make_path(rng)) for _ in range(count)]

    if settings.warmup:
        run(Stats(scenario.label, mode), calls("warmup", settings.warmup), senders, settings.seconds)
    target = scenario.target_p95_ms if len(senders) == 1 else None
    stats = Stats(scenario.label, mode, target_p95_ms=target)
    run(stats, calls("measure", settings.requests), senders, settings.seconds)
    say(
        f"  {scenario.label} [{mode}]: n={stats.count} p50={stats.percentile(50) or 0:.1f} ms "
        f"p95={stats.percentile(95) or 0:.1f} ms errors={stats.errors}"
    )
    return stats


@dataclass
class Results:
    ingest: list[Stats] = field(default_factory=list)
    groups: list[tuple[str, float | None, list[Stats]]] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    auth: list[authz.AuthGroup] = field(default_factory=list)
    auth_facts: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    ceiling: ceiling.Ceiling | None = None
    export: export.ExportRun | None = None
    audit_view: audit_view.AuditView | None = None
    proxy: proxy.ProxyFigures | None = None


def _load(settings: Settings, data: Dataset, results: Results, local: Sender, remote: SenderFactory) -> None:
    """The first share of the Bundles in process, the rest over the socket from concurrent clients."""
    fhir_path = f"/fhir/{HOSPITAL}"
    split = round(len(data.bundles) * settings.inprocess_share)
    say(f"ingesting Bundles 1-{split} in process")
    stats = Stats("ingest", "in-process (test client) x1")
    results.ingest.append(_ingest(stats, data, range(split), [local], fhir_path))
    say(f"ingesting Bundles {split + 1}-{len(data.bundles)} over the socket")
    stats = Stats("ingest", f"gunicorn socket x{settings.clients}")
    senders = [remote() for _ in range(settings.clients)]
    results.ingest.append(_ingest(stats, data, range(split, len(data.bundles)), senders, fhir_path))


def _query(settings: Settings, data: Dataset, results: Results, local: Sender, remote: SenderFactory) -> None:
    for scenario in scenarios(data.pools):
        say(f"measuring {scenario.label}")
        rows = [_measure(settings, scenario, "in-process x1", [local])]
        rows.append(_measure(settings, scenario, "socket x1", [remote()]))
        if settings.clients > 1:
            senders = [remote() for _ in range(settings.clients)]
            rows.append(_measure(settings, scenario, f"socket x{settings.clients}", senders))
        results.groups.append((scenario.label, scenario.target_p95_ms, rows))


def _authorization(
    settings: Settings,
    data: Dataset,
    results: Results,
    flask_app,
    local: Sender,
    remote: SenderFactory,
    system_headers: dict,
) -> None:
    """Patient tokens for a sample of the patients; each request kind with a patient token and
    with the system token on the same draws, in process and over the socket (one client)."""
    patients = authz.sample(data.pools, settings)
    say(f"authorization overhead: {len(patients)} patient users, credentials and tokens (POST /oauth/token)")
    tokens = authz.patient_tokens(flask_app, patients)
    warm = authz.warm_tokens(tokens, [(local, 1), (remote(), 4 * settings.workers)], settings.seconds)
    fhir_base = f"/fhir/{HOSPITAL}/"
    checks, warnings = authz.check(
        flask_app.test_client(), fhir_base, system_headers, tokens, data.pools, settings.seed
    )
    if warm.errors:
        warnings.insert(0, f"{warm.errors} token warm-up requests failed; first: {warm.first_error}")
    say(f"  correctness guard: {checks} comparisons, {len(warnings)} warnings")
    for warning in warnings:
        say(f"  WARNING: {warning}")
    results.auth_facts.update(patients=len(patients), checks=checks, warnings=warnings)
    for scenario in authz.scenarios(data.pools, patients):
        say(f"measuring {scenario.label} (patient token) vs {scenario.system_label} (system token)")
        group = authz.AuthGroup(scenario)
        for mode, senders in (("in-process x1", [local]), ("socket x1", [remote()])):
            system, patient = authz.measure(settings, scenario, mode, senders, tokens)
            value = authz.ratio(system, patient)
            say(
                f"  [{mode}] p95 patient {patient.percentile(95) or 0:.1f} ms, system"
                f" {system.percentile(95) or 0:.1f} ms, ratio {value or 0:.2f}"
                f" errors={patient.errors + system.errors}"
            )
            group.rows.append((mode, system, patient))
        results.auth.append(group)


def _timed(results: Results, phase: str, action, *args) -> None:
    t0 = time.perf_counter()
    action(*args)
    results.timings[phase] = time.perf_counter() - t0


def _against_servers(settings: Settings, data: Dataset, results: Results, port: int) -> None:
    """Both servers on the one database: the app in this process, and gunicorn."""
    from app import create_app
    from app.extensions import db

    with tempfile.TemporaryDirectory(prefix="fhirgate-bench-") as instance:
        flask_app = create_app(instance_path=Path(instance))
        logging.getLogger().setLevel(logging.WARNING)
        try:
            token = _prepare(flask_app)
            fhir_path = f"/fhir/{HOSPITAL}"
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
            post_headers = {**headers, "Prefer": settings.prefer}
            with gunicorn(port, settings.workers, dict(os.environ), RESULTS / "gunicorn.log") as url:
                say(f"gunicorn --workers {settings.workers} serving {url}")
                local_post = inprocess_sender(flask_app.test_client(), "", post_headers)
                remote_post = socket_sender_factory(url, post_headers, SOCKET_TIMEOUT_S)
                _timed(results, "ingest", _load, settings, data, results, local_post, remote_post)
                if settings.analyze:
                    say("ANALYZE")
                    _timed(results, "analyze", database.analyze, settings)
                results.facts.update(database.facts(settings, HOSPITAL))

                local = inprocess_sender(flask_app.test_client(), f"{fhir_path}/", headers)
                lean = settings.http_client != "requests"
                factory = lean_sender_factory if lean else socket_sender_factory
                remote = factory(f"{url}{fhir_path}/", headers, SOCKET_TIMEOUT_S)
                _timed(results, "measure", _query, settings, data, results, local, remote)
                if settings.auth_patients:
                    args = (settings, data, results, flask_app, local, remote, headers)
                    _timed(results, "authorization", _authorization, *args)
                say("bulk export by a fhirgate worker process")
                args = (results, flask_app, fhir_path, headers, data.resources, Path(instance) / "exports")
                _timed(results, "export", _export, *args)
            say("gunicorn stopped")
            say("read vs the ceiling under granian (wrk)")
            args = (dict(os.environ), Path(instance), fhir_path, token, data.pools.patients, settings.seed)
            searches = typical_searches(data.pools, fhir_path, settings.seed)
            _timed(results, "ceiling", _ceiling, results, *args, settings.workers, searches)
            say("a read through an EHR integration vs the same read straight from the EHR")
            args = (
                results,
                flask_app,
                dict(os.environ),
                Path(instance),
                token,
                data.pools.patients,
                settings,
            )
            _timed(results, "proxy", _proxy, *args)
            say("the hospital admin's audit view over a million AuditEvents")
            _timed(results, "audit view", _audit_view, results, flask_app, data.pools.patients, settings.seed)
        finally:
            with flask_app.app_context():
                db.session.remove()
                db.engine.dispose()


def _export(results: Results, flask_app, fhir_path: str, headers: dict, expected: int, folder: Path) -> None:
    env = dict(os.environ)
    results.export = export.measure(flask_app.test_client(), env, fhir_path, headers, expected, folder)
    say(
        f"  {results.export.resources:,} resources in {results.export.seconds:.2f} s, worker peak"
        f" {results.export.peak_mib:,.0f} MiB"
    )


def _ceiling(results: Results, *args) -> None:
    results.ceiling = ceiling.measure(*args)


def _proxy(
    results: Results, flask_app, env: dict, folder: Path, token: str, patients: list[str], settings
) -> None:
    """The EHR's credentials a developer would get from it: a sandbox API key and its secret."""
    from oauth import create_hospital_key

    with flask_app.app_context():
        new = create_hospital_key(
            HOSPITAL, "EHR integration", ["system/Patient.rs"], token_ttl=3600, require_key_headers=False,
            owner_user_id=None,
        )  # fmt: skip
        key = {"key": new.client.client_id, "secret": new.secret}
    results.proxy = proxy.measure(env, folder, key, token, patients, settings.seed, settings.workers)


def _audit_view(results: Results, flask_app, patients: list[str], seed: int) -> None:
    results.audit_view = audit_view.measure(flask_app, patients, seed, say)


def cpu_probe() -> float:
    """Milliseconds of CPU for a fixed pure-Python loop: shows a host that is slower right now."""
    best = float("inf")
    for _ in range(3):
        start, total = time.process_time(), 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.process_time() - start)
    return best * 1000


def benchmark(settings: Settings) -> tuple[list[str], bool]:
    started = time.perf_counter()
    load_before = os.getloadavg()
    probe_before = cpu_probe()
    results = Results()
    port = settings.port or free_port()
    _configure_environment(settings, f"http://127.0.0.1:{port}")

    say(f"generating {settings.patients} patients (seed {settings.seed}) and their transaction Bundles")
    t0 = time.perf_counter()
    data = build(settings.patients, settings.seed, settings.per_bundle)
    results.timings["generate"] = time.perf_counter() - t0
    say(f"  {data.resources:,} resources in {len(data.bundles)} Bundles")

    say(f"creating database {settings.database}")
    if database.create(settings):
        say(f"  dropped a leftover {settings.database} first")
    try:
        _against_servers(settings, data, results, port)
    finally:
        if settings.keep:
            say(f"keeping database {settings.database} (BENCH_KEEP=1)")
        else:
            database.drop(settings)
            say(f"dropped database {settings.database}")
    results.timings["total"] = time.perf_counter() - started
    results.facts["load"] = (load_before[0], os.getloadavg()[0])
    results.facts["probe"] = (probe_before, cpu_probe())
    return _render(settings, data, results)


def _authorization_section(settings: Settings, results: Results) -> list[str]:
    facts = results.auth_facts
    if not results.auth:
        return []
    warnings = facts.get("warnings", [])
    guard = (
        f"Correctness guard (untimed, in process): {facts.get('checks', 0)} comparisons for"
        f" {min(authz.GUARD_PATIENTS, facts.get('patients', 0))} patients (own Patient read, another"
        " patient's read 404, Observation, Condition and a code/date search vs the system token's"
        " patient=X): " + (f"{len(warnings)} WARNINGS" if warnings else "all equal")
    )
    return [
        "",
        "Authorization overhead: patient token vs system token",
        f"{facts.get('patients', 0)} patients drawn (seeded) from the data set, each with a patient user,"
        f" a patient credential and a token from POST /oauth/token (client_secret_basic, scope"
        f" {authz.PATIENT_SCOPE});",
        "the system token is the system/*.cruds API key's. Each request is drawn once and sent with the"
        " patient's token (narrowed by the server to the patient's compartment)",
        "and with the system token naming the patient, so both return the same entries;"
        f" {settings.requests} requests (or {settings.seconds:g} s) per row after {settings.warmup}"
        " warm-up pairs,",
        f"the two rows measured in {authz.CHUNKS} alternating chunks; every patient token was used"
        " beforehand in process and over the socket (cached token checks, as in steady use);",
        f"ratio = patient p95 / system p95, ok when <= {AUTH_RATIO_LIMIT:g}",
        *report.auth_table(results.auth),
        guard,
        *(f"  WARNING: {warning}" for warning in warnings),
    ]


def _render(settings: Settings, data: Dataset, results: Results) -> tuple[list[str], bool]:
    facts, ingest, groups, timings = results.facts, results.ingest, results.groups, results.timings
    types = ", ".join(f"{name} {count:,}" for name, count in data.pools.types.most_common())
    by_type = facts.get("by_type", {})
    stored = sum(min(by_type.get(name, 0), count) for name, count in data.pools.types.items())
    stored_ok = all(by_type.get(name) == count for name, count in data.pools.types.items())
    extra = {name: count for name, count in by_type.items() if name not in data.pools.types}
    others = ", ".join(f"{count:,} {name}" for name, count in extra.items())
    others = f" (plus {others} written by the server)" if others else ""
    lines = [
        f"fhirgate benchmark  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  commit {_git_revision()}",
        f"PostgreSQL {facts.get('server_version', '?')} at 127.0.0.1"
        f" (shared_buffers {facts.get('shared_buffers', '?')}), database {settings.database};"
        f" Python {platform.python_version()}; {os.cpu_count()} CPUs; gunicorn --workers {settings.workers}",
        "Load average (1 min) before {:.2f}, after {:.2f} (other work on the machine skews figures)".format(
            *facts["load"]
        ),
        "CPU probe (a fixed pure-Python loop, best of 3) before {:.0f} ms, after {:.0f} ms: on a shared host"
        " this moves by up to 1.8x, and every figure below with it".format(*facts["probe"]),
        f"Data set: fhir.sandbox.generate({settings.patients}, seed={settings.seed}):"
        f" {data.resources:,} resources in {len(data.bundles)} transaction Bundles"
        f" of <= {settings.per_bundle} PUT entries",
        f"  {types}",
        f"Stored: {stored:,} of the {data.resources:,} generated resources"
        f"{' (INCOMPLETE)' if not stored_ok else ''}{others},"
        f" {facts.get('versions', 0):,} versions, {facts.get('index_rows', 0):,} search index rows;"
        f" database {facts.get('size_bytes', 0) / 2**20:,.0f} MiB"
        + ("; ANALYZE run after loading" if settings.analyze else "; no ANALYZE"),
        "",
        f"Ingestion: POST transaction Bundles to /fhir/{HOSPITAL} (Prefer: {settings.prefer});"
        f" first {settings.inprocess_share:.0%} of the Bundles in process, the rest over the socket"
        f" (requests.Session per client thread)",
        *report.ingestion_table(ingest),
        "",
        f"Reads and searches: {settings.requests} requests (or {settings.seconds:g} s) per row after"
        f" {settings.warmup} warm-up requests; seeded random parameters drawn from the data;",
        f"latency per request as the client sees it ({CLIENTS[settings.http_client]} over the socket);"
        " x1/x2 = concurrent clients;",
        "entries = resources per response; gunicorn's sync workers answer Connection: close, so every"
        " socket request opens a TCP connection;",
        "latency targets are judged on the single-client rows (x2 rows show throughput under load,"
        " client and server sharing the CPUs)",
        *report.query_table(groups),
        *_authorization_section(settings, results),
        *ceiling.section(results.ceiling),
        *export.section(results.export),
        *proxy.section(results.proxy),
        *audit_view.section(results.audit_view),
        "",
        "Targets",
        *report.summary(ingest, groups),
        *report.auth_summary(results.auth),
        *ceiling.summary(results.ceiling),
        *export.summary(results.export, settings.patients),
        *proxy.summary(results.proxy),
        *audit_view.summary(results.audit_view),
    ]
    auth_rows = [s for group in results.auth for _, system, patient in group.rows for s in (system, patient)]
    all_rows = ingest + [s for _, _, rows in groups for s in rows] + auth_rows
    failures = report.errors_of(all_rows)
    if results.ceiling and (results.ceiling.read.errors or results.ceiling.trivial.errors):
        failures.append(
            f"  the ceiling runs had errors: read {results.ceiling.read.errors}, "
            f"trivial {results.ceiling.trivial.errors}"
        )
    if any(s.stopped_early for s in all_rows):
        lines.append("  * stopped at the time limit before the request count was reached")
    if failures:
        lines += ["", "Errors", *failures]
    phases = ", ".join(f"{name} {report.minutes(sec)}" for name, sec in timings.items() if name != "total")
    lines += ["", f"Took {report.minutes(timings['total'])} ({phases})"]
    return lines, bool(failures) or not stored_ok


def main() -> int:
    try:
        settings = load()
    except SettingsError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    lines, failed = benchmark(settings)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.txt").write_text(text)
    say(f"written to {(RESULTS / 'latest.txt').relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
