"""Strict parsing of requests to the token, introspection and revocation endpoints.

RFC 6749 §2.3.1 and §3.2: parameters only in a form-encoded POST body, never in the query
string; no parameter twice; exactly one client authentication method per request.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import defaultdict
from functools import cached_property
from urllib.parse import unquote_plus

import orjson
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Payload
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from oauth.audience import token_endpoint_url
from oauth.errors import ClientAuthenticationFailed, RequestTooLargeError

MAX_BODY_BYTES = 64 * 1024
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
PRINTABLE_ID = re.compile(r"[\x21-\x7e]{1,200}")

BASIC = "client_secret_basic"
POST = "client_secret_post"
JWT = "private_key_jwt"
NONE = "none"
TOKEN_PATH = "/oauth/token"  # a public client (RFC 6749 §2.1): client_id alone, PKCE in its place


class FormPayload(OAuth2Payload):
    """Parameters from the request body only; the query string is never consulted."""

    def __init__(self, form):
        self._form = form

    @property
    def data(self):
        return self._form

    @cached_property
    def datalist(self):
        values = defaultdict(list)
        for key in self._form:
            values[key].extend(self._form.getlist(key))
        return values


class EndpointRequest(FlaskOAuth2Request):
    """An Authlib request built from a checked Flask request.

    ``client_credentials`` holds ``(method, client_id, secret)`` decided by
    ``parse_endpoint_request``; the URI is the configured endpoint URL, so the transport
    check sees the public https address even behind a TLS-terminating proxy.
    ``authenticated`` is the id of the client the request authenticated as, once it has
    (``oauth.grants.authenticate_endpoint_client``): the rate limits count by it.
    """

    authenticated: str | None = None

    def __init__(self, request: Request, client_credentials: tuple[str, str | None, str | None]):
        super(FlaskOAuth2Request, self).__init__(
            method=request.method, uri=token_endpoint_url(), headers=request.headers
        )
        self._request = request
        self.payload = FormPayload(request.form)
        self.client_credentials = client_credentials

    @property
    def args(self):
        return {}


def basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise ClientAuthenticationFailed("The Authorization header is not HTTP Basic.", basic=True)
    try:
        decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise ClientAuthenticationFailed("Malformed HTTP Basic credentials.", basic=True) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id or not secret:
        raise ClientAuthenticationFailed("Malformed HTTP Basic credentials.", basic=True)
    # RFC 6749 §2.3.1: both are form-urlencoded before being joined.
    return unquote_plus(client_id), unquote_plus(secret)


def claimed_client_id(request: Request) -> str | None:
    """The client id a request claims, unchecked and never raising (for rate-limit keys)."""
    header = request.headers.get("Authorization")
    if header:
        try:
            return basic_credentials(header)[0][:64]
        except ClientAuthenticationFailed:
            return None
    if request.mimetype == FORM_CONTENT_TYPE and (request.content_length or 0) <= MAX_BODY_BYTES:
        value = request.form.get("client_id") or _assertion_subject(request.form.get("client_assertion"))
        return value[:64] if value else None
    return None


def _assertion_subject(assertion: str | None) -> str | None:
    """The ``sub`` a client assertion names, unverified (RFC 7521 lets ``client_id`` be left out)."""
    parts = assertion.split(".") if assertion and len(assertion) <= 16 * 1024 else []
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    subject = payload.get("sub") if isinstance(payload, dict) else None
    return subject if isinstance(subject, str) and PRINTABLE_ID.fullmatch(subject) else None


def parse_endpoint_request(request: Request) -> EndpointRequest:
    """Check the request's shape and decide its single client authentication method."""
    request.max_content_length = MAX_BODY_BYTES
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise RequestTooLargeError()
    if request.mimetype != FORM_CONTENT_TYPE:
        raise InvalidRequestError(f"The request body must be {FORM_CONTENT_TYPE}.")
    if request.query_string:
        raise InvalidRequestError("Parameters must be sent in the request body, not the URL.")
    try:
        form = request.form
    except RequestEntityTooLarge:
        raise RequestTooLargeError() from None
    for key in form:
        if len(form.getlist(key)) > 1:
            raise InvalidRequestError(f"The parameter '{key[:40]}' is repeated.")

    methods = []
    if "Authorization" in request.headers:
        methods.append(BASIC)
    if "client_secret" in form:
        methods.append(POST)
    if "client_assertion" in form or "client_assertion_type" in form:
        methods.append(JWT)
    if len(methods) > 1:
        raise InvalidRequestError("Use exactly one client authentication method.")
    refreshing = form.get("grant_type") == "refresh_token" and request.path == TOKEN_PATH
    if not methods and (form.get("client_id") or refreshing):
        # Whether this client may go without is the grant's to decide. A public client may
        # leave out even its client_id when refreshing (RFC 6749 §6, §3.2.1): the refresh
        # token names it (SMART's fhirclient sends none).
        methods.append(NONE)
    if not methods:
        raise ClientAuthenticationFailed("Client authentication is required.")

    method = methods[0]
    if method == BASIC:
        client_id, secret = basic_credentials(request.headers["Authorization"])
        if "client_id" in form and form["client_id"] != client_id:
            raise InvalidRequestError("client_id in the body differs from the Basic credentials.")
    elif method == NONE:
        client_id, secret = form.get("client_id") or None, None
        if client_id is None:
            return EndpointRequest(request, (method, None, None))
    elif method == POST:
        client_id, secret = form.get("client_id", ""), form["client_secret"]
        if not client_id or not secret:
            raise ClientAuthenticationFailed("client_id and client_secret are both required.")
    else:
        # RFC 7521 §4.2: client_id is optional here; the assertion's sub names the client.
        client_id, secret = form.get("client_id") or None, None
        if client_id is None:
            return EndpointRequest(request, (method, None, None))
    if not PRINTABLE_ID.fullmatch(client_id):
        raise ClientAuthenticationFailed(basic=method == BASIC)
    return EndpointRequest(request, (method, client_id, secret))
