"""The client-credentials grant (RFC 6749 §4.4) with RFC 8707 resource indicators."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from flask import current_app
from sqlalchemy import update

from app.extensions import db
from app.timeutil import as_utc, utcnow
from oauth.audience import hospital_for_resource
from oauth.errors import ClientAuthenticationFailed, InvalidTargetError
from oauth.models import KEY_AUTH_METHOD, OAuthClient
from oauth.reach import Reach, hospital_reach
from oauth.scopes import ScopeError, covers, parse_scopes, split_scope
from oauth.tokens import issue_access_token
from oauth.validity import validity_cache

# ``last_used_at`` is refreshed at most this often, so issuing tokens costs no write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# SMART Backend Services: an access token's lifetime "should not exceed five minutes".
BACKEND_SERVICES_MAX_TTL = 300


def authenticate_endpoint_client(server, request, supported_methods, endpoint) -> OAuthClient:
    """Authenticate with the one method the request used, if this endpoint supports it."""
    method = request.client_credentials[0]
    if method not in supported_methods:
        raise ClientAuthenticationFailed("This client authentication method is not supported.")
    client = server.authenticate_client(request, [method], endpoint)
    request.authenticated = client.client_id  # see oauth.token_limits
    return client


def choose_target(client: OAuthClient, resource: str | None) -> tuple[str, Reach]:
    """RFC 8707 §2: pick the hospital the token is for; return ``(hospital_id, held)``."""
    cached = validity_cache().endpoint_client(client.client_id)
    return target_within(cached[1] if cached is not None else hospital_reach(client), resource)


def target_within(
    reach: dict[str, Reach], resource: str | None, base_url: str | None = None
) -> tuple[str, Reach]:
    """``choose_target`` given the hospitals the client reaches, with what it holds there
    (``base_url``: ``FHIRGATE_BASE_URL``, for callers outside an application context)."""
    if resource is None:
        if len(reach) != 1:
            raise InvalidTargetError(
                "This client reaches several hospitals: name one with the resource parameter."
            )
        return next(iter(reach.items()))
    hospital_id = hospital_for_resource(resource, base_url)
    if hospital_id not in reach:
        raise InvalidTargetError("The resource is not a FHIR base URL this client may reach.")
    return hospital_id, reach[hospital_id]


# A client asks for the same scope again and again: the answer is remembered while the granted
# and requested scopes together are at most this long (1,024 answers: ~2 MB at the very most).
REMEMBERED_SCOPES_LENGTH = 1024


def narrow_scope(granted: str, requested: str | None) -> str:
    """RFC 6749 §3.3: the requested scope must lie within the granted one; absent = all."""
    if requested is None:
        return granted
    if len(granted) + len(requested) <= REMEMBERED_SCOPES_LENGTH:
        return _remembered_narrowing(granted, requested)
    return _narrowing(granted, requested)


def _narrowing(granted: str, requested: str) -> str:
    if not requested.strip():
        raise InvalidScopeError("The scope parameter is empty.")
    try:
        wanted = parse_scopes(requested)
    except ScopeError:
        raise InvalidScopeError("The requested scope is not a SMART resource scope.") from None
    held = parse_scopes(granted)
    if not all(covers(held, scope) for scope in wanted):
        raise InvalidScopeError("The requested scope exceeds what this client was granted.")
    return " ".join(dict.fromkeys(split_scope(requested)))


_remembered_narrowing = lru_cache(maxsize=1024)(_narrowing)  # errors are raised, not remembered


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", KEY_AUTH_METHOD]

    def authenticate_token_endpoint_client(self) -> OAuthClient:
        client = authenticate_endpoint_client(
            self.server, self.request, self.TOKEN_ENDPOINT_AUTH_METHODS, "token"
        )
        self.server.send_signal("after_authenticate_client", client=client, grant=self)
        return client

    def validate_token_request(self) -> None:
        """RFC 6749 §4.4.2, with ``resource`` from RFC 8707 §2.2."""
        client = self.authenticate_token_endpoint_client()
        self.request.client = client
        form = self.request.form
        if "resource" in form and not form["resource"]:
            raise InvalidRequestError("The resource parameter is empty.")
        self.hospital_id, self.held = choose_target(client, form.get("resource"))
        self.scope = narrow_scope(self.held.scope, form.get("scope"))

    def create_token_response(self):
        """RFC 6749 §4.4.3: a token, no refresh token, nothing written per token."""
        client = self.request.client
        lifetime = token_lifetime(self.request.client_credentials[0])
        token = issue_access_token(client, self.hospital_id, self.scope, lifetime, self.held.serial)
        note_client_used(client)
        return 200, token.response(), self.TOKEN_RESPONSE_HEADER


def token_lifetime(auth_method: str, config=None) -> int:
    lifetime = (current_app.config if config is None else config)["FHIRGATE_TOKEN_TTL"]
    if auth_method == KEY_AUTH_METHOD:
        lifetime = min(lifetime, BACKEND_SERVICES_MAX_TTL)
    return lifetime


def last_use_due(client: OAuthClient) -> bool:
    """Whether ``note_client_used`` would write now."""
    last = as_utc(client.last_used_at)
    return last is None or utcnow() - last >= LAST_USED_RESOLUTION


def note_client_used(client: OAuthClient) -> None:
    """Record ``last_used_at`` at one-minute resolution: at most one write a minute.

    ``client`` is the worker's cached copy (detached): the row is updated by statement.
    """
    if last_use_due(client):
        now = utcnow()
        client.last_used_at = now
        db.session.execute(
            update(OAuthClient).where(OAuthClient.client_id == client.client_id).values(last_used_at=now)
        )
        db.session.commit()
