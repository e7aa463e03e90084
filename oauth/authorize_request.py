"""The authorization request (RFC 6749 §4.1.1, SMART App Launch 2.x, RFC 7636), checked.

Two kinds of error, as RFC 6749 §4.1.2.1 orders them: while the client or its redirect URI is
in doubt (an unknown client, an unregistered ``redirect_uri``) — and, as SMART asks, while the
``aud`` names no FHIR server of ours — nothing is sent anywhere: the person sees a page
(``AuthorizePageError``). Every other error goes back to the application's redirect URI with
``error``, ``state`` and ``iss`` (RFC 9207; ``AuthorizeRedirectError``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from authlib.common.urls import add_params_to_uri
from flask import current_app

from app.extensions import db
from app.models import Hospital
from oauth.audience import hospital_for_resource
from oauth.ehr_launch import pending_launch
from oauth.models import APPLICATION, LaunchContext, OAuthClient
from oauth.validity import validity_cache

# The parameters this endpoint reads; any other is ignored (RFC 6749 §3.1).
PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "launch",
    "prompt",
    "request",
    "request_uri",
)
MAX_LENGTHS = {"scope": 4000, "state": 2000, "nonce": 500, "aud": 2048, "launch": 200}
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters without padding.
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


class AuthorizePageError(Exception):
    """An error shown to the person, never sent to the redirect URI."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AuthorizeRedirectError(Exception):
    """An RFC 6749 §4.1.2.1 error for the application, sent to its redirect URI."""

    def __init__(self, error: str, description: str, redirect_uri: str, state: str | None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state

    def location(self) -> str:
        return redirect_location(
            self.redirect_uri, self.state, error=self.error, error_description=self.description
        )


@dataclass(frozen=True)
class AuthorizationRequest:
    client: OAuthClient
    redirect_uri: str
    scope: str
    state: str
    hospital_id: str
    code_challenge: str
    nonce: str | None
    launch: LaunchContext | None
    # RFC 6749 §4.1.3: the exchange must repeat redirect_uri only if the request carried it.
    redirect_uri_sent: bool
    # The parameters as sent (only those this endpoint reads), to carry through sign-in and
    # the consent form, where they are checked again.
    parameters: dict[str, str]

    def location(self, **params: str) -> str:
        return redirect_location(self.redirect_uri, self.state, **params)


def redirect_location(redirect_uri: str, state: str | None, **params: str) -> str:
    """The redirect URI with the response's parameters, ``state`` and ``iss`` (RFC 9207) added
    to any query it already has (RFC 6749 §3.1.2)."""
    values = [*params.items()]
    if state is not None:
        values.append(("state", state))
    values.append(("iss", current_app.config["FHIRGATE_BASE_URL"]))
    return add_params_to_uri(redirect_uri, values)


def registered_redirect_uris(client: OAuthClient) -> list[str]:
    return json.loads(client.redirect_uris) if client.redirect_uris else []


def parse_authorization_request(source) -> AuthorizationRequest:
    """Check the parameters (``source``: a werkzeug MultiDict, the query or the form)."""
    params = {name: source.get(name) for name in PARAMETERS if name in source}
    repeated = [name for name in params if len(source.getlist(name)) > 1]

    client_id = params.get("client_id")
    if not client_id or "client_id" in repeated:
        raise AuthorizePageError("The application sent no client_id (or several).")
    found = validity_cache().endpoint_client(client_id) if len(client_id) <= 64 else None
    client = found[0] if found is not None else None
    if client is None or not client.active or client.kind != APPLICATION:
        raise AuthorizePageError("No application with this client_id is registered here.")
    registered = registered_redirect_uris(client)
    redirect_uri = params.get("redirect_uri") or None  # empty: as if left out (RFC 6749 §3.1)
    sent_redirect_uri = redirect_uri is not None
    if not registered:
        raise AuthorizePageError(
            "This application has registered no redirect URI, so it cannot sign people in."
        )
    if redirect_uri is None and len(registered) == 1:
        redirect_uri = registered[0]  # RFC 6749 §3.1.2.3: optional when only one is registered
    if "redirect_uri" in repeated or redirect_uri not in registered:
        raise AuthorizePageError(
            "The application asked to send you to an address it has not registered, so it was stopped."
        )
    audience = params.get("aud")
    hospital_id = (
        hospital_for_resource(audience) if audience and len(audience) <= MAX_LENGTHS["aud"] else None
    )
    if hospital_id is None or "aud" in repeated or db.session.get(Hospital, hospital_id) is None:
        raise AuthorizePageError(
            "The application did not name a FHIR server of this site (the aud parameter), so it was stopped."
        )

    state = params.get("state")
    state = state if state is not None and "state" not in repeated else None

    def refuse(error: str, description: str):
        return AuthorizeRedirectError(error, description, redirect_uri, state)

    if repeated:
        raise refuse("invalid_request", f"The parameter {repeated[0]} is repeated.")
    for name, limit in MAX_LENGTHS.items():
        if len(params.get(name) or "") > limit:
            raise refuse("invalid_request", f"The {name} parameter is too long.")
    if "request" in params:
        raise refuse("request_not_supported", "Request objects are not supported.")
    if "request_uri" in params:
        raise refuse("request_uri_not_supported", "request_uri is not supported.")
    if not params.get("response_type"):
        raise refuse("invalid_request", "The response_type parameter is missing.")
    if params["response_type"] != "code":
        raise refuse("unsupported_response_type", "Only response_type=code is supported.")
    if not state:
        raise refuse("invalid_request", "The state parameter is required (SMART App Launch).")
    if not params.get("code_challenge"):
        raise refuse(
            "invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256."
        )
    if params.get("code_challenge_method") != "S256":
        raise refuse("invalid_request", "code_challenge_method must be S256; plain is not accepted.")
    if not S256_CHALLENGE.fullmatch(params["code_challenge"]):
        raise refuse("invalid_request", "code_challenge must be 43 base64url characters (S256).")
    if not (params.get("scope") or "").strip():
        raise refuse("invalid_scope", "The scope parameter is required.")
    launch = None
    if "launch" in params:  # an EHR launch: the context it was started with, used once
        launch = pending_launch(params["launch"] or "", client.client_id, hospital_id)
        if launch is None:
            raise refuse(
                "invalid_request", "The launch is unknown, expired, already used or another application's."
            )
    if "none" in (params.get("prompt") or "").split():
        raise refuse("interaction_required", "The patient must approve the application here.")
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        scope=params["scope"],
        state=state,
        hospital_id=hospital_id,
        code_challenge=params["code_challenge"],
        nonce=params.get("nonce") or None,
        launch=launch,
        redirect_uri_sent=sent_redirect_uri,
        parameters={name: value for name, value in params.items() if value is not None},
    )
