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
from oauth.endpoint_request import NONE
from oauth.errors import ClientAuthenticationFailed, InvalidTargetError
from oauth.models import KEY_AUTH_METHOD, SECRET_AUTH_METHODS, OAuthClient
from oauth.reach import Reach, Target, hospital_reach
from oauth.scopes import ScopeError, SmartScope, covers, parse_scopes, split_scope
from oauth.tokens import issue_access_token
from oauth.validity import validity_cache

# ``last_used_at`` is refreshed at most this often, so issuing tokens costs no write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# SMART Backend Services: an access token's lifetime "should not exceed five minutes".
BACKEND_SERVICES_MAX_TTL = 300


def authenticate_endpoint_client(server, request, supported_methods, endpoint) -> OAuthClient:
    """Authenticate with the one method the request used, if this endpoint supports it."""
    method = request.client_credentials[0]
    if method == NONE and method not in supported_methods:
        raise ClientAuthenticationFailed("Client authentication is required.")
    if method not in supported_methods:
        raise ClientAuthenticationFailed("This client authentication method is not supported.")
    client = server.authenticate_client(request, [method], endpoint)
    request.authenticated = client.client_id  # see oauth.token_limits
    return client


def choose_target(client: OAuthClient, resource: str | None, requested: str | None) -> Target:
    """RFC 8707 §2 and RFC 6749 §3.3: the hospitals the token is for, with its scopes at each."""
    cached = validity_cache().endpoint_client(client.client_id)
    return target_within(cached[1] if cached is not None else hospital_reach(client), resource, requested)


def target_within(
    reach: dict[str, Reach], resource: str | None, requested: str | None, base_url: str | None = None
) -> Target:
    """``choose_target`` given the hospitals the client reaches, with what it holds there
    (``base_url``: ``FHIRGATE_BASE_URL``, for callers outside an application context).

    A ``resource`` narrows the token to that hospital (RFC 8707 §2). Without one the token is
    for every hospital the client reaches — one hospital, as ever, or several (RFC 9068 §3
    allows an ``aud`` array): a client granted a second hospital keeps getting tokens for the
    request it has always made, instead of ``invalid_target``.
    """
    if resource is not None:
        hospital_id = hospital_for_resource(resource, base_url)
        if hospital_id not in reach:
            raise InvalidTargetError("The resource is not a FHIR base URL this client may reach.")
    elif len(reach) == 1:
        hospital_id = next(iter(reach))
    elif reach:
        return spread_scope(reach, requested)
    else:
        raise InvalidTargetError("This client reaches no hospital.")
    held = reach[hospital_id]
    return Target.one(hospital_id, narrow_scope(held.scope, requested), held.serial)


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
    wanted = _requested_scopes(requested)
    held = parse_scopes(granted)
    if not all(covers(held, scope) for scope in wanted.values()):
        raise InvalidScopeError("The requested scope exceeds what this client was granted.")
    return " ".join(wanted)


def _requested_scopes(requested: str) -> dict[str, SmartScope]:
    """The ``scope`` parameter's scopes, each once, in the order given; ``invalid_scope`` if
    it is empty or holds anything but SMART resource scopes."""
    if not requested.strip():
        raise InvalidScopeError("The scope parameter is empty.")
    texts = list(dict.fromkeys(split_scope(requested)))
    try:
        return dict(zip(texts, parse_scopes(texts), strict=True))
    except ScopeError:
        raise InvalidScopeError("The requested scope is not a SMART resource scope.") from None


_remembered_narrowing = lru_cache(maxsize=1024)(_narrowing)  # errors are raised, not remembered


def spread_scope(reach: dict[str, Reach], requested: str | None) -> Target:
    """A token for several hospitals (no ``resource``): each carries the requested scopes its
    grant covers (all it holds if none is requested), and a hospital covering none of them is
    left out. A requested scope that no hospital covers is ``invalid_scope`` (RFC 6749 §5.2):
    what a client asks for is never dropped silently. The token's ``scope`` — the claim and the
    response's — is the union of what the hospitals carry, which with a ``scope`` parameter is
    exactly what was requested; each hospital still admits only its own part."""
    hospitals = tuple(sorted(reach.items()))
    size = sum(len(held.scope) for held in reach.values()) + len(requested or "")
    if size <= REMEMBERED_SCOPES_LENGTH:
        return _remembered_spread(hospitals, requested)
    return _spread(hospitals, requested)


def _spread(hospitals: tuple[tuple[str, Reach], ...], requested: str | None) -> Target:
    if requested is None:
        carried = tuple((hospital_id, held) for hospital_id, held in hospitals if held.scope.strip())
        union = dict.fromkeys(scope for _, held in carried for scope in split_scope(held.scope))
    else:
        wanted = _requested_scopes(requested)
        carried, somewhere = [], set()
        for hospital_id, held in hospitals:
            granted = parse_scopes(held.scope)
            here = [text for text, scope in wanted.items() if covers(granted, scope)]
            if here:
                carried.append((hospital_id, Reach(" ".join(here), held.serial)))
                somewhere.update(here)
        if len(somewhere) != len(wanted):
            raise InvalidScopeError(
                "A requested scope is granted at none of the hospitals this client reaches."
            )
        union = dict.fromkeys(wanted)  # all of it, in the order asked for
    if not carried:
        raise InvalidTargetError("This client holds no scope at any hospital.")
    if len(carried) == 1:  # the only one covering the request: an ordinary one-hospital token
        ((hospital_id, held),) = carried
        return Target.one(hospital_id, held.scope, held.serial)
    return Target(tuple(carried), " ".join(union))


_remembered_spread = lru_cache(maxsize=256)(_spread)


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
        self.target = choose_target(client, form.get("resource"), form.get("scope"))

    def create_token_response(self):
        """RFC 6749 §4.4.3: a token, no refresh token, nothing written per token."""
        client = self.request.client
        method, _, secret = self.request.client_credentials
        lifetime = token_lifetime(method)
        # The secret, where it authenticated the request, for the EHR integrations' claim.
        presented = secret if method in SECRET_AUTH_METHODS.split() else None
        token = issue_access_token(client, self.target, lifetime, secret=presented)
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
