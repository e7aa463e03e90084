"""The SMART App Launch grants for ``make bench-oauth``: the authorization-code exchange and the
refresh grant, beside client credentials, on the same server and the same load generator.

Both spend single-use credentials, so the Lua scripts hand each request a fresh one. Codes (they
live 60 s) are written to the database right before each run — the approvals a patient would
have made, through the same keyed hash and the same PKCE challenge the server checks — and read
by the script from a file, one per request. Refresh tokens rotate: the script starts from a pool
of approvals and sends each request the token the last answer returned, as a client does.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg

from benchmarks.server import ROOT
from benchmarks.settings import SECRET_KEY
from oauth.credentials import hash_secret

REDIRECT = "https://bench.example/callback"
SCOPE = "launch/patient offline_access patient/*.rs"
VERIFIER = "bench-verifier-" + "v" * 58  # 73 characters, as the suites send
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
REFRESH_POOL = 64
CODES_PER_SECOND = 6000  # more than the exchange can take, so a run never runs out


def prepare(env: dict[str, str]) -> tuple[str, int]:
    """A patient account and a confidential SMART app on the sandbox; ``(key:secret, user id)``."""
    code = (
        "from app.factory import create_app\n"
        "from app.accounts import create_user\n"
        "from oauth import create_application\n"
        "from oauth.registration import Metadata\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    user = create_user('bench-patient@example.org', 'bench-password-0123', 'patient',"
        " hospital_id='sandbox', patient_id='bench-patient')\n"
        "    new = create_application('Bench app', None, None,"
        f" registration=Metadata(redirect_uris=({REDIRECT!r},)))\n"
        "    print(new.client.client_id + ':' + new.secret, user.id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    pair, user_id = done.stdout.strip().splitlines()[-1].split()
    return pair, int(user_id)


def _approvals(client_id: str, user_id: int, count: int, *, used: bool) -> list[tuple]:
    now = datetime.now(UTC)
    return [
        (
            secrets.token_urlsafe(18),
            client_id,
            user_id,
            "sandbox",
            "bench-patient",
            SCOPE,
            now + timedelta(seconds=60),
            now if used else None,
            REDIRECT,
            CHALLENGE,
            now,
        )
        for _ in range(count)
    ]


_COPY_APPROVALS = (
    "COPY oauth_authorizations (id, client_id, user_id, hospital_id, patient_id, scope, code_expires_at,"
    " code_used_at, redirect_uri, code_challenge, created_at, code_hash) FROM STDIN"
)


def write_codes(dsn: str, client_id: str, user_id: int, count: int, file: Path) -> None:
    """``count`` approvals, each with a fresh code, listed in ``file`` for the Lua script."""
    codes = ["ac_" + secrets.token_urlsafe(32) for _ in range(count)]
    rows = _approvals(client_id, user_id, count, used=False)
    with psycopg.connect(dsn) as connection, connection.cursor().copy(_COPY_APPROVALS) as copy:
        for row, code in zip(rows, codes, strict=True):
            copy.write_row((*row, hash_secret(code, SECRET_KEY)))
    _analyze(dsn)
    file.write_text("\n".join(codes) + "\n")


def _analyze(dsn: str) -> None:
    """Tens of thousands of rows appear at once here, where a server's tables grow over days:
    give the planner the statistics autovacuum would have gathered by then."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("ANALYZE oauth_authorizations, oauth_refresh_tokens")


def write_refresh_tokens(dsn: str, client_id: str, user_id: int, file: Path) -> None:
    """A pool of taken-up approvals with one refresh token each, listed in ``file``."""
    rows = _approvals(client_id, user_id, REFRESH_POOL, used=True)
    tokens = ["rt_" + secrets.token_urlsafe(32) for _ in rows]
    with psycopg.connect(dsn) as connection:
        with connection.cursor().copy(_COPY_APPROVALS) as copy:
            for row in rows:
                copy.write_row((*row, None))
        with connection.cursor().copy(
            "COPY oauth_refresh_tokens (token_hash, authorization_id, created_at) FROM STDIN"
        ) as copy:
            for row, token in zip(rows, tokens, strict=True):
                copy.write_row((hash_secret(token, SECRET_KEY), row[0], row[-1]))
    _analyze(dsn)
    file.write_text("\n".join(tokens) + "\n")


def lua_scripts(folder: Path) -> tuple[Path, Path]:
    """The code exchange (one code per request, from ``BENCH_CODES``) and the refresh grant
    (the token each answer returns goes to a later request; the pool from ``BENCH_REFRESH``)."""
    head = (
        'local headers = {["Content-Type"] = "application/x-www-form-urlencoded",'
        ' ["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")}\n'
    )
    exchange = folder / "exchange.lua"
    exchange.write_text(
        head
        + "local codes, next_code = {}, 0\n"
        + 'for line in io.lines(os.getenv("BENCH_CODES")) do codes[#codes + 1] = line end\n'
        + "request = function()\n"
        + "  next_code = next_code + 1\n"
        + '  local body = "grant_type=authorization_code&code=" .. (codes[next_code] or "spent")'
        + f' .. "&redirect_uri={quote(REDIRECT, safe="")}&code_verifier={VERIFIER}"\n'
        + '  return wrk.format("POST", nil, headers, body)\n'
        + "end\n"
    )
    refresh = folder / "refresh.lua"
    refresh.write_text(
        head
        + "local pool = {}\n"
        + 'for line in io.lines(os.getenv("BENCH_REFRESH")) do pool[#pool + 1] = line end\n'
        + "request = function()\n"
        + '  local token = table.remove(pool, 1) or "none-left"\n'
        + '  return wrk.format("POST", nil, headers, "grant_type=refresh_token&refresh_token=" .. token)\n'
        + "end\n"
        + "response = function(status, headers, body)\n"
        + '  local token = string.match(body, \'"refresh_token":"([^"]+)"\')\n'
        + "  if token then pool[#pool + 1] = token end\n"
        + "end\n"
    )
    return exchange, refresh
