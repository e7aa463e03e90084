"""The common refresh request, answered beneath Flask in one database statement.

A SMART app refreshes its access token every few minutes: the refresh grant, its client's
secret (Basic or ``client_secret_post``) or — a public client — its ``client_id``, and the
refresh token, nothing else. Through Flask, Authlib and the ORM that took seven statements, two
commits and about 5 ms of CPU. Here, on PostgreSQL, one prepared statement over the worker's
libpq connection (``app.direct_reads``) spends the presented token, records the approval's last
use and stores the next token, and only if the token is unused, its approval this client's,
unrevoked, unexpired, not ``online_access`` (whose session is checked by the view), the
approving account not disabled, and the client unrevoked at the generation whose secret was
checked; it returns the approval. The access token is then signed with the same function as
the view's grant.

Anything else goes on to the view untouched: another shape, a ``scope``, a client not in the
worker's cache, a wrong secret, a limit reached, ``last_used_at`` due, and a statement that
returns no row — a used token (the view then revokes the approval, RFC 9700 §4.14.2), a revoked
or expired approval, an unknown token: nothing was written, so the view finds the request as it
came. Once the statement has been sent the request can no longer go back: were it to, a token
the statement spent would look reused. A statement whose answer is lost therefore gets a 503
``temporarily_unavailable`` here, never the view.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl

import orjson
from authlib.consts import default_json_headers
from flask import Flask

from app.fast_path import FastPath
from oauth import token_limits
from oauth.authorizations import REFRESH_PREFIX
from oauth.credentials import hash_secret, secret_matches
from oauth.endpoint_request import NONE, PRINTABLE_ID
from oauth.grants import last_use_due, token_lifetime
from oauth.token_fast_path import presented_credentials, small_form_body
from oauth.tokens import Approved, approval_response, mint_authorized_token

log = logging.getLogger(__name__)
TOKEN_PATH = "/oauth/token"
MAX_COMMON_BODY = 1024
KNOWN_PARAMETERS = frozenset({"grant_type", "refresh_token", "client_id", "client_secret"})
MAX_REFRESH_TOKEN = 100

# $1 the presented token's hash, $2 the client, $3 the client's generation, $4 the next token's hash
REFRESH_STATEMENT = """
WITH spent AS (
    UPDATE oauth_refresh_tokens AS r SET used_at = now()
    FROM oauth_authorizations AS a, users AS u, oauth_clients AS c
    WHERE r.token_hash = $1 AND r.used_at IS NULL
      AND a.id = r.authorization_id AND a.client_id = $2 AND a.revoked_at IS NULL
      AND (a.expires_at IS NULL OR a.expires_at > now()) AND a.session_hash IS NULL
      AND u.id = a.user_id AND u.disabled_at IS NULL
      AND c.client_id = a.client_id AND c.revoked_at IS NULL AND c.generation = $3::integer
    RETURNING a.id, a.user_id, a.hospital_id, a.patient_id, a.scope, a.expires_at, a.fhir_user
), touched AS (
    UPDATE oauth_authorizations SET last_used_at = now() WHERE id IN (SELECT id FROM spent)
), fresh AS (
    INSERT INTO oauth_refresh_tokens (token_hash, authorization_id, created_at)
    SELECT $4, id, now() FROM spent
)
SELECT id, user_id, hospital_id, patient_id, scope, floor(extract(epoch FROM expires_at))::bigint, fhir_user
FROM spent
"""


class RefreshFastPath(FastPath):
    name = "refresh fast path"

    def __init__(self, app: Flask, wsgi_app) -> None:
        super().__init__(app, wsgi_app)
        self.reads = app.extensions["fhirgate_direct_reads"]

    def takes(self, environ) -> bool:
        return (
            environ.get("PATH_INFO") == TOKEN_PATH
            and environ.get("REQUEST_METHOD") == "POST"
            and self.app.config["FHIRGATE_TOKEN_FAST_PATH"]
            and self.reads.ready()
        )

    def answer(self, environ):
        common = common_refresh_request(environ)
        if common is None:
            return None
        method, client_id, secret, refresh_token = common
        app = self.app
        cached = app.extensions["fhirgate_validity"].cached_endpoint_client(client_id)
        signing_key = app.extensions["fhirgate_keyring"].loaded_signing_key()
        if cached is None or signing_key is None:
            return None
        client = cached[0]
        address = environ.get("REMOTE_ADDR")
        if (
            not client.active
            or client.access_token_alg == "RS256"
            or token_limits.pair_locked(app, address, client_id)
        ):
            return None  # (an application with its own signing algorithm: the view signs)
        config = app.config
        if method == NONE:
            authenticated = client.check_endpoint_auth_method(NONE, "token")
        else:
            authenticated = secret_matches(secret, client.secret_hash, config["SECRET_KEY"]) and (
                client.check_endpoint_auth_method(method, "token")
            )
        if not authenticated or last_use_due(client) or not token_limits.admit(app, client_id, address):
            return None

        following = REFRESH_PREFIX + secrets.token_urlsafe(32)
        params = (
            hash_secret(refresh_token, config["SECRET_KEY"]),
            client_id,
            str(client.generation),
            hash_secret(following, config["SECRET_KEY"]),
        )
        rows = self.reads.run("refresh_grant", REFRESH_STATEMENT, params)
        if rows is None:
            return unavailable()
        if not rows:
            return None  # nothing was written: the view finds out why, and answers
        try:
            return self._respond(client, method, rows[0], following, signing_key)
        except Exception as error:  # noqa: BLE001 - written already: never back to the view (see above)
            # By type only: no log line carries a stack trace or a token.
            log.warning("refresh fast path failed after its statement (%s)", type(error).__name__)
            return unavailable()

    def _respond(self, client, method: str, row, following: str, signing_key):
        config = self.app.config
        approval_id, user_id, hospital_id, patient_id, scope, expires, fhir_user = row
        issuer = config["FHIRGATE_BASE_URL"]
        lifetime = token_lifetime(method, config)
        if expires is not None:
            lifetime = max(1, min(lifetime, int(expires) - int(time.time())))
        approved = Approved(approval_id, int(user_id), hospital_id, patient_id, fhir_user)
        issued = mint_authorized_token(client, approved, scope, lifetime, issuer, signing_key)
        body = approval_response(issued, scope, issuer)
        body["refresh_token"] = following
        encoded = orjson.dumps(body)
        return encoded, [*default_json_headers, ("Content-Length", str(len(encoded)))]


def unavailable():
    """503: the statement was sent and its answer lost; whether it took effect is unknown."""
    body = orjson.dumps(
        {
            "error": "temporarily_unavailable",
            "error_description": "The database did not answer; the refresh token may have been spent.",
        }
    )
    headers = [*default_json_headers, ("Content-Length", str(len(body)))]
    return body, headers, "503 Service Unavailable"


def common_refresh_request(environ) -> tuple[str, str, str | None, str] | None:
    """``(method, client_id, secret, refresh_token)`` of a plain refresh request the view would
    read the same way, else None. The body, once read, is put back for the view."""
    body = small_form_body(environ, MAX_COMMON_BODY)
    if body is None or not body.isascii():
        return None
    form = _refresh_form(body.decode("ascii"))
    credentials = presented_credentials(environ, form) if form is not None else None
    if credentials is None:
        return None
    return (*credentials, form["refresh_token"])


def _refresh_form(text: str) -> Mapping[str, str] | None:
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=len(KNOWN_PARAMETERS)
        )
    except ValueError:
        return None
    form = dict(pairs)
    token = form.get("refresh_token", "")
    if (
        len(form) != len(pairs)
        or not form.keys() <= KNOWN_PARAMETERS
        or form.get("grant_type") != "refresh_token"
        or not token.startswith(REFRESH_PREFIX)
        or len(token) > MAX_REFRESH_TOKEN
        or not PRINTABLE_ID.fullmatch(token)
    ):
        return None
    return form
