"""The common token request, answered beneath Flask.

Nearly every token request looks the same: the client-credentials grant, HTTP Basic (or
``client_secret_post``), perhaps a scope and a resource, from a client that asked a moment
ago. Flask's request handling, Flask-Limiter and Authlib's dispatch cost about two thirds of
such an answer, so this WSGI middleware answers it itself, with the functions the Authlib
grant uses: the worker's client cache under the revocation epoch (read fresh for every
request, while the token is being made), the keyed secret check, ``target_within`` (the
hospitals and the scope at each, one hospital or several), ``mint_token`` and the endpoint's
rate limits (``oauth.token_limits``), all without an application context.

It answers successes only. Anything else — a client not yet in the worker's cache, a wrong
secret, a parameter it does not know, a limit reached, ``last_used_at`` due to be written,
the epoch unreadable — goes on untouched to the Flask view, which decides and renders it
(and caches the client for the next request). Every error answer, and every client
authentication method other than the two secret ones, therefore stays Authlib's.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import parse_qsl

import orjson
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Flask

from app.fast_path import FastPath
from oauth import token_limits
from oauth.credentials import secret_matches
from oauth.endpoint_request import BASIC, FORM_CONTENT_TYPE, NONE, POST, PRINTABLE_ID, basic_credentials
from oauth.epoch_reader import EpochReader
from oauth.errors import ClientAuthenticationFailed
from oauth.grants import last_use_due, target_within, token_lifetime
from oauth.models import APPLICATION
from oauth.tokens import mint_token

TOKEN_PATH = "/oauth/token"
# A common request is a few hundred bytes; anything longer is left to the view's checks.
MAX_COMMON_BODY = 4096
KNOWN_PARAMETERS = frozenset({"grant_type", "scope", "resource", "client_id", "client_secret"})
MAX_FIELDS = len(KNOWN_PARAMETERS)
# Values the view would read identically: printable ASCII (a scope has spaces).
_PLAIN_VALUE = re.compile(r"[\x20-\x7e]*")


class TokenFastPath(FastPath):
    """In front of the Flask app (inside ``ProxyFix``, so that the address and scheme it sees
    are the client's)."""

    name = "token fast path"

    def __init__(self, app: Flask, wsgi_app) -> None:
        super().__init__(app, wsgi_app)
        self.epochs: EpochReader = app.extensions["fhirgate_epoch_reader"]

    def takes(self, environ) -> bool:
        return (
            environ.get("PATH_INFO") == TOKEN_PATH
            and environ.get("REQUEST_METHOD") == "POST"
            and self.app.config["FHIRGATE_TOKEN_FAST_PATH"]
        )

    def answer(self, environ) -> tuple[bytes, list[tuple[str, str]]] | None:
        common = common_token_request(environ)
        if common is None:
            return None
        # The epoch is asked for first and awaited last: the token is made meanwhile from
        # what the cache holds, and given out only if the epoch read is the cache's.
        epoch_now = self.epochs.start()
        try:
            made = self._make_token(environ, *common)
        finally:
            epoch = epoch_now()
        if made is None or epoch is None:
            return None
        token, cached_epoch, client_id, address = made
        if epoch != cached_epoch:
            return None  # something changed: the view reads the epoch and reloads
        if not token_limits.admit(self.app, client_id, address):
            return None  # a limit is reached: the view answers 429
        body = orjson.dumps(token.response())
        return body, [*default_json_headers, ("Content-Length", str(len(body)))]

    def _make_token(self, environ, method: str, client_id: str, secret: str, form: Mapping[str, str]):
        """``(token, epoch, client_id, address)`` from the cached client, or None.

        No application context is pushed (pushing and popping one would cost a tenth of the
        answer): what the view reads through ``current_app`` is taken from ``self.app``.
        """
        app = self.app
        cached = app.extensions["fhirgate_validity"].cached_endpoint_client(client_id)
        signing_key = app.extensions["fhirgate_keyring"].loaded_signing_key()
        if cached is None or signing_key is None:
            return None
        client, reach, cached_epoch = cached
        address = environ.get("REMOTE_ADDR")
        # An address that has used up its failures for this client id is refused before the
        # secret is looked at, as in the view: answering a right secret later than a wrong one
        # would let guessing go on.
        if (
            not client.active
            or client.access_token_alg == "RS256"
            or token_limits.pair_locked(app, address, client_id)
        ):
            return None  # (an application with its own signing algorithm: the view signs)
        config = app.config
        if not (
            secret_matches(secret, client.secret_hash, config["SECRET_KEY"])
            and client.check_endpoint_auth_method(method, "token")
            and not last_use_due(client)
        ):
            return None
        issuer = config["FHIRGATE_BASE_URL"]
        lifetime = token_lifetime(method, config)
        try:
            target = target_within(reach, form.get("resource"), form.get("scope"), issuer)
            connected = app.extensions.get("fhirgate_connected_hospitals")
            if (
                client.kind == APPLICATION
                and connected is not None
                and connected.may_reach([hospital_id for hospital_id, _ in target.hospitals], cached_epoch)
            ):
                return None  # a connected hospital's token carries the integration key: the view's
            token = mint_token(client, target, lifetime, issuer, signing_key)
        except OAuth2Error:
            return None
        return token, cached_epoch, client_id, address


def common_token_request(environ) -> tuple[str, str, str, Mapping[str, str]] | None:
    """``(method, client_id, secret, form)`` if the request is a plain client-credentials
    request with a secret, every part of which the view would read the same way; else None.

    The body, once read, is put back for the view.
    """
    body = small_form_body(environ, MAX_COMMON_BODY)
    form = _common_form(body) if body is not None else None
    credentials = presented_credentials(environ, form) if form is not None else None
    if credentials is None or credentials[0] == NONE:
        return None
    return (*credentials, form)


def small_form_body(environ, limit: int) -> bytes | None:
    """The body of a form POST with no query string, at most ``limit`` bytes, or None; read
    once and put back, so that the view reads it as it came."""
    if environ.get("QUERY_STRING"):
        return None
    if environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() != FORM_CONTENT_TYPE:
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= limit:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body if len(body) == length else None


def presented_credentials(environ, form: Mapping[str, str]) -> tuple[str, str, str | None] | None:
    """``(method, client_id, secret)`` as the view would read them: HTTP Basic,
    ``client_secret_post``, or ``client_id`` alone (``none``, a public client's; ``secret``
    None); None for anything the view would refuse or read otherwise."""
    header = environ.get("HTTP_AUTHORIZATION")
    if header is not None:
        if "client_secret" in form:
            return None  # two methods: the view refuses it
        try:
            client_id, secret = basic_credentials(header)
        except ClientAuthenticationFailed:
            return None
        if form.get("client_id", client_id) != client_id:
            return None
        method = BASIC
    elif "client_secret" in form:
        client_id, secret, method = form.get("client_id", ""), form["client_secret"], POST
        if not secret:
            return None
    else:
        client_id, secret, method = form.get("client_id", ""), None, NONE
    if not client_id or not PRINTABLE_ID.fullmatch(client_id):
        return None
    return method, client_id, secret


# A client sends the same body every time: a plain form without a secret is remembered parsed
# (bodies with one are parsed every time, so that no secret is kept; so are refused ones).
REMEMBERED_FORMS = 256
_remembered_forms: dict[bytes, Mapping[str, str]] = {}


def _common_form(body: bytes) -> Mapping[str, str] | None:
    """The body's parameters (read-only) if it is a plain client-credentials form, else None."""
    form = _remembered_forms.get(body)
    if form is None:
        form = _parsed_form(body)
        if form is not None and "client_secret" not in form:
            if len(_remembered_forms) >= REMEMBERED_FORMS:
                _remembered_forms.clear()
            _remembered_forms[body] = form
    return form


def _parsed_form(body: bytes) -> Mapping[str, str] | None:
    if not body.isascii():
        return None
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        return None
    form = dict(pairs)
    if (
        len(form) != len(pairs)
        or not form.keys() <= KNOWN_PARAMETERS
        or form.get("grant_type") != "client_credentials"
        or "resource" in form
        and not form["resource"]
        or not all(_PLAIN_VALUE.fullmatch(value) for value in form.values())
    ):
        return None
    return MappingProxyType(form)
