"""The benchmark's knobs, read from ``BENCH_*`` environment variables (``make bench VAR=...``)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# Fixed, strong, bench-only secrets: the in-process app and the gunicorn workers must share them
# (the KEK decrypts the token signing key both sides use). They guard nothing but the bench DB.
SECRET_KEY = "fhirgate-bench-secret-key-7f3c91d2a84b4e6f9c05b1e8d2a7f64c3b9e0d5a"
KEK = "fhirgate-bench-kek-2b8e5f0c6d1a4973b8c2e9f4a0d7c6b15e3f8a2d9c4b7e1f"
HIGH_LIMIT = "1000000/minute"
HOSPITAL = "sandbox"
# FHIRGATE_TOKEN_TTL for the bench (300 s by default): tokens from /oauth/token must outlive the
# authorization section, so that no patient token expires in the middle of it.
TOKEN_TTL = 3600
AUTH_RATIO_LIMIT = 1.5  # patient-token p95 / system-token p95
PROTECTED_DATABASES = {"postgres", "test", "template0", "template1"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class SettingsError(ValueError):
    """A BENCH_* setting is out of range; the message names it."""


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    patients: int
    seed: int
    per_bundle: int
    inprocess_share: float
    server: str  # postgresql://user@host:port, loopback only
    database: str
    keep: bool
    port: int
    workers: int
    clients: int
    requests: int
    seconds: float
    warmup: int
    analyze: bool
    prefer: str
    http_client: str
    auth_patients: int

    @property
    def database_url(self) -> str:
        return f"{self.server.replace('postgresql://', 'postgresql+psycopg://', 1)}/{self.database}"

    @property
    def admin_dsn(self) -> str:
        return f"{self.server}/postgres"


def load() -> Settings:
    server = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
    parts = urlsplit(server)
    if parts.scheme != "postgresql" or parts.hostname not in LOOPBACK or parts.path:
        raise SettingsError("BENCH_PG must be postgresql://user@127.0.0.1:port (loopback, no database)")
    database = os.environ.get("BENCH_DB", "fhirgate_bench")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database) or database in PROTECTED_DATABASES:
        raise SettingsError(f"BENCH_DB={database!r} is not a dedicated benchmark database name")
    http_client = os.environ.get("BENCH_HTTP_CLIENT", "http.client")
    if http_client not in ("http.client", "requests"):
        raise SettingsError("BENCH_HTTP_CLIENT must be http.client or requests")
    share = _float("BENCH_INPROCESS_SHARE", 0.5)
    if not 0 <= share <= 1:
        raise SettingsError("BENCH_INPROCESS_SHARE must be between 0 and 1")
    return Settings(
        patients=_int("BENCH_PATIENTS", 1000, minimum=1),
        seed=_int("BENCH_SEED", 0),
        per_bundle=_int("BENCH_PER_BUNDLE", 500, minimum=1),
        inprocess_share=share,
        server=server,
        database=database,
        keep=os.environ.get("BENCH_KEEP", "0") not in ("", "0"),
        port=_int("BENCH_PORT", 0),
        workers=_int("BENCH_WORKERS", 2, minimum=1),
        clients=_int("BENCH_CLIENTS", 2, minimum=1),
        requests=_int("BENCH_REQUESTS", 500, minimum=1),
        seconds=_float("BENCH_SECONDS", 15.0),
        warmup=_int("BENCH_WARMUP", 20),
        analyze=os.environ.get("BENCH_ANALYZE", "1") not in ("", "0"),
        prefer=os.environ.get("BENCH_PREFER", "return=minimal"),
        http_client=http_client,
        auth_patients=_int("BENCH_AUTH_PATIENTS", 50),
    )
