"""``make bench-oauth``: fhirgate's token endpoint against node ``oidc-provider``, side by side,
and fhirgate's SMART App Launch grants (the authorization-code exchange and the refresh grant,
``benchmarks/oauth_grants.py``) beside its client credentials at 4 connections.

Both issue ES256 JWT access tokens to one confidential client (``client_secret_basic``, the
client-credentials grant). The same load generator (``wrk``, one thread, keep-alive, a Lua
script that POSTs the token request) drives oidc-provider, then fhirgate on PostgreSQL as
production runs it (``FHIRGATE_ENV=production``, granian; ``BENCH_OAUTH_SERVER=gunicorn`` for
gunicorn's sync workers), at 1, 4 and 16 connections;
each cell is the median of ``BENCH_OAUTH_RUNS`` runs of ``BENCH_OAUTH_SECONDS``. A trivial
endpoint of the same fhirgate server setup (``GET /healthz``) gives the stack's ceiling.

oidc-provider comes from the npm registry into ``.cache/oidc-provider`` (pinned version, no
vendored code); ``wrk`` from apt (the Makefile installs it). Everything listens on 127.0.0.1
and stops at the end, also on errors; the database ``fhirgate_bench_oauth`` is dropped.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests
from psycopg import sql

from benchmarks import oauth_grants
from benchmarks.server import GRANIAN_OPTIONS, ROOT, free_port, granian, gunicorn, server_env
from benchmarks.settings import HIGH_LIMIT, KEK, LOOPBACK, PROTECTED_DATABASES, SECRET_KEY
from benchmarks.wrk import Cell, median_cell, wrk

OIDC_PROVIDER_VERSION = "9.13.3"
CACHE = ROOT / ".cache" / "oidc-provider"
PEER_SCRIPT = Path(__file__).with_name("peers") / "oidc_provider_server.mjs"
DATABASE = "fhirgate_bench_oauth"
CONNECTIONS = (1, 4, 16)
TARGET_RATIO = 1.5  # fhirgate / oidc-provider req/s at 4 connections
REFRESH_TARGET = 0.5  # refresh grant / client credentials req/s at 4 connections, same run
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-client-secret-0123456789abcdef"
SCOPE = "system/Patient.rs"
SERVERS = {"granian": granian, "gunicorn": gunicorn}  # BENCH_OAUTH_SERVER; granian in production


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _measure(url: str, script: Path, basic: str | None, runs: int, seconds: float) -> dict[int, Cell]:
    env = {"BENCH_BASIC": basic or ""}
    wrk(url, 4, min(seconds, 2), script, env)  # warm-up: connections, caches, JIT
    return {c: median_cell([wrk(url, c, seconds, script, env) for _ in range(runs)]) for c in CONNECTIONS}


def _lua_scripts(folder: Path) -> tuple[Path, Path]:
    token = folder / "token.lua"
    token.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "grant_type=client_credentials&scope={SCOPE.replace("/", "%2F")}"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        'wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")\n'
    )
    trivial = folder / "trivial.lua"
    trivial.write_text('wrk.method = "GET"\n')
    return token, trivial


def _install_oidc_provider() -> Path:
    """npm install the pinned oidc-provider into the cache folder, once; place the server script."""
    marker = CACHE / "node_modules" / "oidc-provider" / "package.json"
    if not marker.exists() or f'"version": "{OIDC_PROVIDER_VERSION}"' not in marker.read_text():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(CACHE),
             f"oidc-provider@{OIDC_PROVIDER_VERSION}"],
            check=True, timeout=600,
        )  # fmt: skip
    # ES modules resolve packages from the script's own folder, so the script goes next to them.
    script = CACHE / "server.mjs"
    shutil.copyfile(PEER_SCRIPT, script)
    return script


@contextlib.contextmanager
def _oidc_provider(script: Path, port: int, log: Path) -> Iterator[str]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["node", str(script), str(port), CLIENT_ID, CLIENT_SECRET], stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"oidc-provider exited:\n{log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/.well-known/openid-configuration", timeout=5).ok:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("oidc-provider did not answer within 30 s")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _server() -> str:
    """BENCH_PG, the PostgreSQL server (no database): loopback only, like every bench target."""
    server = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
    if urlsplit(server).hostname not in LOOPBACK:
        raise SystemExit(f"BENCH_PG must be a PostgreSQL server on this machine, got {server!r}")
    return server


def _admin_dsn() -> str:
    return _server() + "/postgres"


def _recreate_database() -> None:
    assert DATABASE not in PROTECTED_DATABASES
    with psycopg.connect(_admin_dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def _drop_database() -> None:
    with psycopg.connect(_admin_dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


def _fhirgate_env(base_url: str) -> dict[str, str]:
    database_url = _server().replace("postgresql://", "postgresql+psycopg://", 1) + f"/{DATABASE}"
    env = server_env(database_url, base_url, SECRET_KEY, KEK, HIGH_LIMIT, 300)
    env["FHIRGATE_ENV"] = "production"
    return env


def _prepare_fhirgate(env: dict[str, str]) -> str:
    """Migrate, create the sandbox hospital and one hospital API key; return ``key:secret``."""
    fhirgate = str(Path(sys.executable).with_name("fhirgate"))
    code = (
        "from app.factory import create_app\n"
        "from app.accounts import create_hospital\n"
        "from oauth import create_hospital_key\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    create_hospital('sandbox', 'Sandbox')\n"
        f"    new = create_hospital_key('sandbox', 'bench', [{SCOPE!r}], token_ttl=300,"
        " require_key_headers=False, owner_user_id=None)\n"
        "    print(new.client.client_id + ':' + new.secret)\n"
    )
    quiet = {"env": env, "cwd": ROOT, "check": True, "capture_output": True, "text": True}
    try:
        subprocess.run([fhirgate, "db", "upgrade"], timeout=300, **quiet)
        done = subprocess.run([sys.executable, "-c", code], timeout=120, **quiet)
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"preparing fhirgate failed:\n{error.stderr[-2000:]}") from None
    return done.stdout.strip().splitlines()[-1]


def _row(name: str, cells: dict[int, Cell]) -> str:
    parts = [f"{name:<34}"]
    for c in CONNECTIONS:
        cell = cells.get(c)
        if cell is None:
            parts.append(f"{'—':>30}")
            continue
        errors = f" ({cell.errors} errors)" if cell.errors else ""
        parts.append(f"{cell.rate:>8,.0f}/s {cell.p50_ms:>6.2f} {cell.p99_ms:>7.2f}{errors}")
    return " | ".join(parts)


def _measure_grants(
    base: str, env_dsn: str, folder: Path, runs: int, seconds: float, pair: str, user_id: int
):
    """The code exchange and the refresh grant at 4 connections, each run with fresh codes (or
    a fresh pool of refresh tokens); a short warm-up run first."""
    exchange_lua, refresh_lua = oauth_grants.lua_scripts(folder)
    client_id = pair.split(":", 1)[0]
    basic = base64.b64encode(pair.encode()).decode()
    codes, pool = folder / "codes.txt", folder / "refresh.txt"

    def exchange_run(length: float) -> Cell:
        count = int(oauth_grants.CODES_PER_SECOND * length) + 100
        oauth_grants.write_codes(env_dsn, client_id, user_id, count, codes)
        return wrk(
            f"{base}/oauth/token", 4, length, exchange_lua, {"BENCH_BASIC": basic, "BENCH_CODES": str(codes)}
        )

    def refresh_run(length: float) -> Cell:
        oauth_grants.write_refresh_tokens(env_dsn, client_id, user_id, pool)
        return wrk(
            f"{base}/oauth/token", 4, length, refresh_lua, {"BENCH_BASIC": basic, "BENCH_REFRESH": str(pool)}
        )

    exchange_run(min(seconds, 2))
    exchanges = median_cell([exchange_run(seconds) for _ in range(runs)])
    refresh_run(min(seconds, 2))
    refreshes = median_cell([refresh_run(seconds) for _ in range(runs)])
    return {4: exchanges}, {4: refreshes}


def main() -> int:
    if shutil.which("wrk") is None or shutil.which("node") is None:
        print("bench-oauth needs wrk and node (make bench-oauth installs wrk with apt)", file=sys.stderr)
        return 2
    runs = int(_env_number("BENCH_OAUTH_RUNS", 3))
    seconds = _env_number("BENCH_OAUTH_SECONDS", 10)
    workers = int(_env_number("BENCH_OAUTH_WORKERS", 2))
    server_name = os.environ.get("BENCH_OAUTH_SERVER", "granian")
    if server_name not in SERVERS:
        print(f"BENCH_OAUTH_SERVER must be one of {', '.join(SERVERS)}", file=sys.stderr)
        return 2
    script = _install_oidc_provider()
    with tempfile.TemporaryDirectory(prefix="bench-oauth-") as folder:
        folder = Path(folder)
        token_lua, trivial_lua = _lua_scripts(folder)
        peer_basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        with _oidc_provider(script, free_port(), folder / "oidc-provider.log") as peer:
            check = requests.post(
                f"{peer}/token", data={"grant_type": "client_credentials", "scope": SCOPE},
                auth=(CLIENT_ID, CLIENT_SECRET), timeout=10,
            )  # fmt: skip
            assert check.ok and check.json()["access_token"].count(".") == 2, check.text
            peer_cells = _measure(f"{peer}/token", token_lua, peer_basic, runs, seconds)

        _recreate_database()
        try:
            port = free_port()
            env = _fhirgate_env(f"http://127.0.0.1:{port}")
            key_and_secret = _prepare_fhirgate(env)
            app_pair, user_id = oauth_grants.prepare(env)
            basic = base64.b64encode(key_and_secret.encode()).decode()
            serve = SERVERS[server_name]
            with serve(port, workers, env, folder / f"{server_name}.log", ready_path="/healthz") as base:
                check = requests.post(
                    f"{base}/oauth/token", data={"grant_type": "client_credentials", "scope": SCOPE},
                    headers={"Authorization": f"Basic {basic}"}, timeout=10,
                )  # fmt: skip
                assert check.ok and check.json()["access_token"].count(".") == 2, check.text
                ours = _measure(f"{base}/oauth/token", token_lua, basic, runs, seconds)
                dsn = _server() + f"/{DATABASE}"
                exchanges, refreshes = _measure_grants(base, dsn, folder, runs, seconds, app_pair, user_id)
                ceiling = _measure(f"{base}/healthz", trivial_lua, None, runs, seconds)
        finally:
            _drop_database()

    header = f"{'':<34} | " + " | ".join(f"{c:>2} connections: req/s  p50 ms  p99 ms" for c in CONNECTIONS)
    lines = [
        f"bench-oauth: wrk -t1, keep-alive, median of {runs} x {seconds:g} s; PostgreSQL; "
        f"{_server_description(server_name, workers)}; "
        f"oidc-provider {OIDC_PROVIDER_VERSION} on node {_node_version()}",
        header,
        _row(f"oidc-provider {OIDC_PROVIDER_VERSION} /token (JWT)", peer_cells),
        _row("fhirgate /oauth/token (JWT)", ours),
        _row("fhirgate authorization_code grant", exchanges),
        _row("fhirgate refresh_token grant", refreshes),
        _row("fhirgate GET /healthz (ceiling)", ceiling),
    ]
    for c in CONNECTIONS:
        ratio = ours[c].rate / peer_cells[c].rate
        of_ceiling = ours[c].rate / ceiling[c].rate
        lines.append(
            f"{c:>2} connections: fhirgate / oidc-provider = {ratio:.2f}x; "
            f"fhirgate token / its ceiling = {of_ceiling:.2f}"
        )
    at4 = ours[4].rate / peer_cells[4].rate
    ok = at4 >= TARGET_RATIO and ours[4].p99_ms <= peer_cells[4].p99_ms
    lines.append(
        f"target at 4 connections: >= {TARGET_RATIO}x and p99 <= oidc-provider's: "
        f"{at4:.2f}x, p99 {ours[4].p99_ms:.2f} vs {peer_cells[4].p99_ms:.2f} ms"
        f" -> {'ok' if ok else 'NOT MET'}"
    )
    half = refreshes[4].rate / ours[4].rate
    lines.append(
        f"target at 4 connections: refresh >= {REFRESH_TARGET} x client credentials: {half:.2f}"
        f" -> {'ok' if half >= REFRESH_TARGET else 'NOT MET'}"
    )
    print("\n".join(lines))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / "oauth-latest.txt").write_text("\n".join(lines) + "\n")
    return 0


def _server_description(name: str, workers: int) -> str:
    options = " ".join(GRANIAN_OPTIONS) + " " if name == "granian" else ""
    return f"fhirgate under {name} {options}--workers {workers}"


def _node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
