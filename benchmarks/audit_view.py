"""The hospital admin's audit view over a large audit trail (issue 20).

``GET /api/hospitals/{hid}/audit-events`` newest first, unfiltered and filtered by client and by
outcome, with the trail topped up to ``BENCH_AUDIT_EVENTS`` AuditEvents (1,000,000 by default;
0 skips the section). The events the benchmark adds are made as the audit writer makes them
(``RequestFacts`` → ``audit_event``, ``audit_index``, stored by ``SqlRepository.append``), with
a mix like a busy hospital's: 25 clients, one of them sending 40 % of the requests, reads and
searches of the data set's patients, 2 % of them refused (403/404/429). Their ``recorded``
moments run over the 30 days before the run, so the newest events are the run's own.

The view is asked in process (the Flask test client, a hospital admin's session cookie from
``POST /api/session``): the median and p95 of ``BENCH_AUDIT_REQUESTS`` requests per filter,
target p95 ≤ 50 ms."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from benchmarks.authz import cheap_passwords
from benchmarks.settings import HOSPITAL

TARGET_P95_MS = 50.0
CLIENTS = 25
BUSY_SHARE = 0.4  # of the requests, from the busiest client
REFUSED_SHARE = 0.02
BATCH = 5000
ADMIN = "benchmark-audit-admin@example.org"
PASSWORD = "benchmark-audit-admin-password"  # noqa: S105 - a bench-only account in a bench-only DB


@dataclass(frozen=True)
class ViewRow:
    label: str
    count: int
    p50_ms: float
    p95_ms: float
    events: int  # in each answer (the last)

    @property
    def ok(self) -> bool:
        return self.p95_ms <= TARGET_P95_MS


@dataclass(frozen=True)
class AuditView:
    events: int  # AuditEvents of the hospital when measured
    added: int
    fill_s: float
    rows: tuple[ViewRow, ...]


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _client_ids(rng: random.Random) -> list[str]:
    return [f"hk_bench{n:02d}" + "".join(rng.choices("abcdefghijklmnop", k=12)) for n in range(CLIENTS)]


def _stored_events(session) -> int:
    from sqlalchemy import text

    query = "SELECT count(*) FROM fhir_resources WHERE hospital_id = :h AND resource_type = 'AuditEvent'"
    return session.execute(text(query), {"h": HOSPITAL}).scalar_one()


def fill(flask_app, patients: list[str], target: int, seed: int, say) -> tuple[int, float, list[str]]:
    """Add AuditEvents until the hospital holds ``target``; (how many added, seconds, clients)."""
    from app.extensions import db
    from fhir.audit import INTERACTIONS, RequestFacts, audit_event
    from fhir.audit_index import audit_index
    from fhir.storage.sql import SqlRepository, time_ordered_id

    rng = random.Random(f"{seed}/audit")  # noqa: S311
    clients = _client_ids(rng)
    started = time.perf_counter()
    with flask_app.app_context():
        missing = max(0, target - _stored_events(db.session))
        first = datetime.now(UTC) - timedelta(days=30)
        step = timedelta(days=30) / max(missing, 1)
        for done in range(0, missing, BATCH):
            entries = []
            for n in range(done, min(done + BATCH, missing)):
                client = clients[0] if rng.random() < BUSY_SHARE else rng.choice(clients[1:])
                patient = rng.choice(patients)
                refused = rng.random() < REFUSED_SHARE
                searching = rng.random() < 0.3
                facts = RequestFacts(
                    hospital_id=HOSPITAL,
                    recorded=first + step * n,
                    interaction=INTERACTIONS["fhir.search" if searching else "fhir.read"],
                    method="GET",
                    path=f"/fhir/{HOSPITAL}/{'Observation' if searching else f'Patient/{patient}'}",
                    query=f"patient={patient}" if searching else "",
                    status=rng.choice((403, 404, 429)) if refused else 200,
                    address=f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                    client_id=client,
                    client_kind="hospital API key",
                    patient_id=patient if searching else None,
                    resource_type="Observation" if searching else "Patient",
                    resource_id=None if searching else patient,
                    references=[f"Observation/{patient}-obs{i}" for i in range(5)] if searching else [],
                )
                event = audit_event(facts)
                entries.append((event, time_ordered_id(facts.recorded), audit_index(event)))
            SqlRepository(db.session, HOSPITAL).append(entries)
            db.session.commit()
            if (done // BATCH) % 40 == 0:
                say(f"  audit trail: {done + len(entries):,}/{missing:,} AuditEvents added")
    return missing, time.perf_counter() - started, clients


def _session_client(flask_app):
    from app.accounts import create_user
    from app.extensions import db

    with cheap_passwords(flask_app):
        create_user(ADMIN, PASSWORD, "hospital-admin", hospital_id=HOSPITAL)
        db.session.commit()
    client = flask_app.test_client()
    response = client.post("/api/session", json={"email": ADMIN, "password": PASSWORD})
    if response.status_code != 200:
        raise RuntimeError(
            f"the audit admin could not log in: {response.status_code} {response.get_data()[:200]!r}"
        )
    return client


def measure(flask_app, patients: list[str], seed: int, say) -> AuditView | None:
    target = _setting("BENCH_AUDIT_EVENTS", 1_000_000)
    if target <= 0:
        return None
    requests = _setting("BENCH_AUDIT_REQUESTS", 100)
    added, fill_s, clients = fill(flask_app, patients, target, seed, say)
    client = _session_client(flask_app)
    with flask_app.app_context():
        from app.extensions import db

        events = _stored_events(db.session)
    rng = random.Random(f"{seed}/audit-view")  # noqa: S311
    quiet = clients[1:]
    filters = {
        "newest 50": lambda: "",
        "client=<busiest>": lambda: f"client={clients[0]}",
        "client=<one of 24 others>": lambda: f"client={rng.choice(quiet)}",
        "outcome=failure": lambda: "outcome=failure",
        "client=<other>&outcome=failure": lambda: f"client={rng.choice(quiet)}&outcome=failure",
    }
    rows = []
    base = f"/api/hospitals/{HOSPITAL}/audit-events"
    for label, query in filters.items():
        for _ in range(5):  # warm-up: plans, caches
            client.get(f"{base}?{query()}")
        times, shown = [], 0
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(f"{base}?{query()}")
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"audit view {label}: {response.status_code} {response.get_data()[:200]}")
            shown = len(response.get_json())
        times.sort()
        row = ViewRow(label, len(times), times[len(times) // 2], times[int(len(times) * 0.95) - 1], shown)
        say(f"  audit view {label}: p50 {row.p50_ms:.1f} ms, p95 {row.p95_ms:.1f} ms ({shown} events)")
        rows.append(row)
    return AuditView(events, added, fill_s, tuple(rows))


def section(view: AuditView | None) -> list[str]:
    if view is None:
        return ["", "Audit view: skipped (BENCH_AUDIT_EVENTS=0)"]
    lines = [
        "",
        f"Audit view: GET /api/hospitals/{{hid}}/audit-events, newest first, in process, over"
        f" {view.events:,} AuditEvents ({view.added:,} added in {view.fill_s:.0f} s as the audit writer"
        " stores them)",
        f"  {'filter':<34}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'events':>8}"
        f"  target p95 <= {TARGET_P95_MS:g} ms",
    ]
    for row in view.rows:
        verdict = "ok" if row.ok else "NOT MET"
        timing = f"{row.p50_ms:>9.1f}{row.p95_ms:>9.1f}"
        lines.append(f"  {row.label:<34}{row.count:>6}{timing}{row.events:>8}  {verdict}")
    return lines


def summary(view: AuditView | None) -> list[str]:
    if view is None:
        return []
    worst = max(view.rows, key=lambda row: row.p95_ms)
    label = f"audit view p95 <= {TARGET_P95_MS:g} ms ({view.events:,} events)"
    return [f"  {label:<52}{worst.p95_ms:.1f} ms ({worst.label})  {'ok' if worst.ok else 'NOT MET'}"]
