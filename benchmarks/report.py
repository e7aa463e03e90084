"""The results as a plain-text table."""

from __future__ import annotations

from benchmarks.authz import AuthGroup, ratio, ratio_ok
from benchmarks.measure import Stats
from benchmarks.settings import AUTH_RATIO_LIMIT

INGEST_TARGET = 2000  # resources/s through transaction Bundles (issue 20; issue 3 asked 1,000)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _verdict(ok: bool | None) -> str:
    return {True: "ok", False: "MISSED", None: ""}[ok]


def minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _ingest_ok(s: Stats) -> bool | None:
    return None if not s.count else (s.unit_rate >= INGEST_TARGET and not s.errors)


def ingestion_table(rows: list[Stats]) -> list[str]:
    head = (
        f"  {'mode':<30}{'bundles':>8}{'resources':>11}{'seconds':>9}{'resources/s':>13}"
        f"{'bundles/s':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"  target >= {INGEST_TARGET:,}/s"
    )
    lines = [head, "  " + "-" * (len(head) + 2)]
    for s in rows:
        ok = _ingest_ok(s)
        mark = "*" if s.stopped_early else ""
        lines.append(
            f"  {s.mode:<30}{s.count:>8}{s.units:>11,}{s.wall_s:>9.1f}{s.unit_rate:>13,.0f}"
            f"{s.rate:>11.2f}{_ms(s.percentile(50)):>9}{_ms(s.percentile(95)):>9}{_ms(s.percentile(99)):>9}"
            f"{s.errors:>8}{mark}  {_verdict(ok)}"
        )
    return lines


def query_table(groups: list[tuple[str, float | None, list[Stats]]]) -> list[str]:
    head = (
        f"  {'request / mode':<30}{'n':>6}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'entries':>9}{'errors':>8}  target"
    )
    lines = [head, "  " + "-" * (len(head) + 8)]
    for label, target, rows in groups:
        lines.append(f"  {label}" + (f"   (target p95 < {target:g} ms)" if target else ""))
        for s in rows:
            mark = "*" if s.stopped_early else ""
            entries = s.units / s.count if s.count else 0
            top = max(s.latencies_ms) if s.latencies_ms else None
            lines.append(
                f"    {s.mode:<28}{s.count:>6}{s.rate:>9.1f}{_ms(s.percentile(50)):>9}"
                f"{_ms(s.percentile(95)):>9}{_ms(s.percentile(99)):>9}{_ms(top):>9}{entries:>9.1f}"
                f"{s.errors:>8}{mark}  {_verdict(s.meets_target)}"
            )
    return lines


def errors_of(rows: list[Stats]) -> list[str]:
    return [f"  {s.label} [{s.mode}]: {s.errors} failed; first: {s.first_error}" for s in rows if s.errors]


def summary(ingest: list[Stats], groups: list[tuple[str, float | None, list[Stats]]]) -> list[str]:
    lines = []
    parts = [f"{s.mode.split(' (')[0]} {s.unit_rate:,.0f}/s {_verdict(_ingest_ok(s))}" for s in ingest]
    lines.append(f"  {f'ingestion >= {INGEST_TARGET:,} resources/s':<52}" + "   ".join(parts))
    for label, target, rows in groups:
        if not target:
            continue
        parts = [
            f"{s.mode} p95 {_ms(s.percentile(95))} ms {_verdict(s.meets_target)}"
            for s in rows
            if s.target_p95_ms is not None
        ]
        lines.append(f"  {(label + f' p95 < {target:g} ms'):<52}" + "   ".join(parts))
    return lines


def _ratio(system: Stats, patient: Stats) -> str:
    value = ratio(system, patient)
    return "-" if value is None else f"{value:.2f}x"


def auth_table(groups: list[AuthGroup]) -> list[str]:
    head = (
        f"  {'request / mode / token':<34}{'n':>6}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'entries':>9}{'errors':>8}  patient/system p95"
    )
    lines = [head, "  " + "-" * (len(head) + 2)]
    for group in groups:
        scenario = group.scenario
        lines.append(f"  {scenario.label}   (system token: {scenario.system_label})")
        for _, system, patient in group.rows:
            for s in (system, patient):
                mark = "*" if s.stopped_early else ""
                entries = s.units / s.count if s.count else 0
                top = max(s.latencies_ms) if s.latencies_ms else None
                verdict = ""
                if s is patient:
                    verdict = f"{_ratio(system, patient):>7} {_verdict(ratio_ok(system, patient))}"
                lines.append(
                    f"    {s.mode:<32}{s.count:>6}{s.rate:>9.1f}{_ms(s.percentile(50)):>9}"
                    f"{_ms(s.percentile(95)):>9}{_ms(s.percentile(99)):>9}{_ms(top):>9}{entries:>9.1f}"
                    f"{s.errors:>8}{mark}  {verdict}"
                )
    return lines


def auth_summary(groups: list[AuthGroup]) -> list[str]:
    if not groups:
        return []
    lines = [
        f"  patient-token p95 <= {AUTH_RATIO_LIMIT:g}x system-token p95 (same requests, patient / system):"
    ]
    for group in groups:
        parts = [
            f"{mode} {_ms(patient.percentile(95))}/{_ms(system.percentile(95))} ms"
            f" {_ratio(system, patient)} {_verdict(ratio_ok(system, patient))}"
            for mode, system, patient in group.rows
        ]
        lines.append(f"    {group.scenario.label:<48}" + "   ".join(parts))
    return lines
