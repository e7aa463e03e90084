"""Configuration from environment variables, with safe defaults for a local try.

In development the secrets are random values generated once and kept in
``instance/dev-secrets.json``; production (``FHIRGATE_ENV=production``) refuses to
start unless the operator supplies its own.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from limits import parse_many

from app.rate_limit_storage import SCHEME as MEMORY_RATE_LIMITS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_PATH = PROJECT_ROOT / "instance"

MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says which setting and why."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _positive(name: str, default: int) -> int:
    value = _env_int(name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be a positive whole number, got {value}")
    return value


def _rate(name: str, default: str) -> str:
    """One positive rate in the limits syntax (``6000/minute``), checked at start-up."""
    value = os.environ.get(name) or default
    try:
        items = parse_many(value)
    except ValueError:
        items = []
    if len(items) != 1 or items[0].amount <= 0:
        raise ConfigError(f"{name} must be one positive rate such as {default}, got {value!r}")
    return value


def _dev_secrets(instance_path: Path) -> dict[str, str]:
    """Load, or create once, the random development secrets under ``instance/``."""
    path = instance_path / "dev-secrets.json"
    instance_path.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return json.loads(path.read_text())
    values = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "FHIRGATE_KEK": secrets.token_urlsafe(48),
    }
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def load_config(instance_path: Path = DEFAULT_INSTANCE_PATH) -> dict:
    """Read the environment into a Flask config mapping."""
    env = os.environ.get("FHIRGATE_ENV", "development")
    if env not in ("development", "production"):
        raise ConfigError("FHIRGATE_ENV must be 'development' or 'production'")
    production = env == "production"

    secret_key = os.environ.get("SECRET_KEY")
    kek = os.environ.get("FHIRGATE_KEK")
    if production:
        for name, value in (("SECRET_KEY", secret_key), ("FHIRGATE_KEK", kek)):
            if not value or len(value) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"{name} must be set to at least {MIN_SECRET_LENGTH} random characters in production"
                )
    else:
        dev = _dev_secrets(instance_path)
        secret_key = secret_key or dev["SECRET_KEY"]
        kek = kek or dev["FHIRGATE_KEK"]

    base_url = os.environ.get("FHIRGATE_BASE_URL", "" if production else "http://127.0.0.1:8000")
    base_url = base_url.rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("FHIRGATE_BASE_URL must be an absolute http(s) URL")
    if production and parts.scheme != "https" and not _is_loopback(parts.hostname):
        raise ConfigError("FHIRGATE_BASE_URL must use https in production")

    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'fhirgate.db'}"
    redis_url = os.environ.get("REDIS_URL") or None

    token_ttl = _env_int("FHIRGATE_TOKEN_TTL", 300)
    api_key_token_ttl = _env_int("FHIRGATE_API_KEY_TOKEN_TTL", 86400)
    api_key_token_ttl_max = _env_int("FHIRGATE_API_KEY_TOKEN_TTL_MAX", 7 * 86400)
    if not 0 < token_ttl <= api_key_token_ttl_max or not 0 < api_key_token_ttl <= api_key_token_ttl_max:
        raise ConfigError("token lifetimes must be positive and at most FHIRGATE_API_KEY_TOKEN_TTL_MAX")

    return {
        "FHIRGATE_ENV": env,
        "SECRET_KEY": secret_key,
        "FHIRGATE_KEK": kek,
        "FHIRGATE_BASE_URL": base_url,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {},  # connections idle in the pool are checked: app/pool_checks.py
        "REDIS_URL": redis_url,
        # A client's jwks_uri may be plain http or a local address only in development.
        "FHIRGATE_JWKS_URI_LOCAL_OK": not production,
        # So may a connected hospital's upstream FHIR server (app.integrations).
        "FHIRGATE_UPSTREAM_LOCAL_OK": not production,
        # A proxied request's bound, connection to last byte, and the largest answer taken.
        "FHIRGATE_UPSTREAM_TIMEOUT_S": _positive("FHIRGATE_UPSTREAM_TIMEOUT_S", 15),
        "FHIRGATE_UPSTREAM_MAX_BYTES": _positive("FHIRGATE_UPSTREAM_MAX_BYTES", 8 * 1024 * 1024),
        "RATELIMIT_STORAGE_URI": redis_url or f"{MEMORY_RATE_LIMITS}://",
        "FHIRGATE_TOKEN_TTL": token_ttl,
        "FHIRGATE_API_KEY_TOKEN_TTL": api_key_token_ttl,
        "FHIRGATE_API_KEY_TOKEN_TTL_MAX": api_key_token_ttl_max,
        "FHIRGATE_TOKEN_RATE_LIMIT": os.environ.get("FHIRGATE_TOKEN_RATE_LIMIT", "1200/minute"),
        "FHIRGATE_AUTH_FAILURE_LIMIT": os.environ.get("FHIRGATE_AUTH_FAILURE_LIMIT", "30/minute"),
        "FHIRGATE_LOGIN_FAILURE_LIMIT": os.environ.get("FHIRGATE_LOGIN_FAILURE_LIMIT", "10/minute"),
        # The FHIR API's fair share in points, milliseconds of a worker's time (a read 0.5, a search
        # 10): per client, and per hospital for all its clients (fhir/fair_share.py).
        "FHIRGATE_FHIR_CLIENT_LIMIT": _rate("FHIRGATE_FHIR_CLIENT_LIMIT", "6000/minute"),
        "FHIRGATE_FHIR_HOSPITAL_LIMIT": _rate("FHIRGATE_FHIR_HOSPITAL_LIMIT", "12000/minute"),
        # The common token request answered beneath Flask (oauth/token_fast_path.py); 0 = off.
        "FHIRGATE_TOKEN_FAST_PATH": os.environ.get("FHIRGATE_TOKEN_FAST_PATH", "1") != "0",
        # The common FHIR read answered beneath Flask (fhir/read_fast_path.py); 0 = off.
        "FHIRGATE_READ_FAST_PATH": os.environ.get("FHIRGATE_READ_FAST_PATH", "1") != "0",
        "FHIRGATE_PROXY_FAST_PATH": os.environ.get("FHIRGATE_PROXY_FAST_PATH", "1") != "0",
        # The common FHIR search answered beneath Flask in one statement (fhir/search_fast_path.py),
        # if it takes no longer than this (then the view runs it, in the heavy slot).
        "FHIRGATE_SEARCH_FAST_PATH": os.environ.get("FHIRGATE_SEARCH_FAST_PATH", "1") != "0",
        "FHIRGATE_QUICK_SEARCH_MS": _positive("FHIRGATE_QUICK_SEARCH_MS", 50),
        "MAX_CONTENT_LENGTH": _env_int("FHIRGATE_MAX_BODY_BYTES", 10 * 1024 * 1024),
        # Every statement (PostgreSQL) and every request has a time limit: app/time_limits.py.
        "FHIRGATE_STATEMENT_TIMEOUT_MS": _positive("FHIRGATE_STATEMENT_TIMEOUT_MS", 10_000),
        "FHIRGATE_REQUEST_TIME_LIMIT_S": _positive("FHIRGATE_REQUEST_TIME_LIMIT_S", 20),
        # Heavy FHIR requests (searches, Bundles) a worker runs at once: one fewer than its threads
        # (granian --blocking-threads 2), so that one is always free for light requests (app/lanes.py).
        "FHIRGATE_HEAVY_SLOTS": _positive("FHIRGATE_HEAVY_SLOTS", 1),
        "FHIRGATE_SESSION_TTL": _env_int("FHIRGATE_SESSION_TTL", 8 * 3600),
        "FHIRGATE_TRUSTED_PROXIES": _env_int("FHIRGATE_TRUSTED_PROXIES", 0),
        # Bulk Data $export (fhir/bulk/): where the files go (default instance/exports), lines per
        # file, a worker's lease on its job (another takes the job over when it runs out), how long
        # a finished export's files stay, and the exports one client may have waiting or running.
        "FHIRGATE_EXPORT_DIR": os.environ.get("FHIRGATE_EXPORT_DIR") or None,
        "FHIRGATE_EXPORT_FILE_LINES": _positive("FHIRGATE_EXPORT_FILE_LINES", 100_000),
        "FHIRGATE_EXPORT_LEASE_S": _positive("FHIRGATE_EXPORT_LEASE_S", 60),
        "FHIRGATE_EXPORT_RETENTION_S": _positive("FHIRGATE_EXPORT_RETENTION_S", 24 * 3600),
        "FHIRGATE_EXPORT_ACTIVE_PER_CLIENT": _positive("FHIRGATE_EXPORT_ACTIVE_PER_CLIENT", 4),
        # argon2id cost: RFC 9106's second recommended option (64 MiB, t=3, p=4).
        "FHIRGATE_ARGON2": {"time_cost": 3, "memory_cost": 65536, "parallelism": 4},
        "JSON_SORT_KEYS": False,
    }
