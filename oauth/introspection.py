"""RFC 7662 token introspection and RFC 7009 token revocation."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from flask import current_app

from app.timeutil import as_utc
from oauth.audience import fhir_base_url
from oauth.authorizations import REFRESH_PREFIX, refresh_token_state, revoke_authorization
from oauth.endpoint_request import NONE
from oauth.grants import authenticate_endpoint_client
from oauth.jws import JwsError
from oauth.models import HOSPITAL_KEY, KEY_AUTH_METHOD, Authorization, OAuthClient
from oauth.scopes import split_scope
from oauth.tokens import decode_access_token, live_hospitals, revoke_token_id, token_hospitals

_AUTH_METHODS = ["client_secret_basic", "client_secret_post", KEY_AUTH_METHOD]


@dataclass
class PresentedToken:
    """A verified access token presented to introspection or revocation, with the hospitals
    at which it is still valid (``live``: none if it expired or was revoked); or a refresh
    token, with the patient's approval it belongs to (``approval``; ``claims`` then holds only
    its ``client_id``)."""

    claims: dict
    live: list[str]
    approval: Authorization | None = None

    def check_client(self, client: OAuthClient) -> bool:
        return self.claims["client_id"] == client.client_id

    def is_expired(self) -> bool:
        return not self.live

    def is_revoked(self) -> bool:
        return not self.live


def _query_token(token_string: str, token_type_hint: str | None) -> PresentedToken | None:
    """The hint is not used: the two kinds of token this server issues differ on sight (a
    refresh token is opaque, with its prefix), and RFC 7009 §2.1 has a search by a hint that
    finds nothing go on across every type the server issues."""
    if token_string.startswith(REFRESH_PREFIX):
        found = refresh_token_state(token_string)
        if found is None:
            return None
        approval, usable = found
        return PresentedToken(
            {"client_id": approval.client_id}, [approval.hospital_id] if usable else [], approval
        )
    try:
        claims = decode_access_token(token_string)
    except JwsError:
        return None
    return PresentedToken(claims, live_hospitals(claims))


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = _AUTH_METHODS

    def check_params(self, request, client):
        """RFC 7662 §2.1: ``token`` is required; ``token_type_hint`` is only a hint."""
        if not request.form.get("token"):
            raise InvalidRequestError("The token parameter is missing.")

    def authenticate_endpoint_client(self, request):
        client = authenticate_endpoint_client(
            self.server, request, self.CLIENT_AUTH_METHODS, self.ENDPOINT_NAME
        )
        request.client = client
        return client

    def query_token(self, token_string, token_type_hint):
        return _query_token(token_string, token_type_hint)

    def check_permission(self, token: PresentedToken, client: OAuthClient, request) -> bool:
        """A client sees its own tokens; a hospital key also those aimed at its hospital, and
        of a token for several hospitals only its own hospital's part (where else the token's
        client is granted, and what, is not that hospital's business)."""
        if token.check_client(client):
            return True
        if token.approval is not None:
            return client.kind == HOSPITAL_KEY and client.hospital_id == token.approval.hospital_id
        if client.kind == HOSPITAL_KEY and client.hospital_id in token_hospitals(token.claims):
            token.live = [client.hospital_id] if client.hospital_id in token.live else []
            return True
        return False

    def introspect_token(self, token: PresentedToken) -> dict:
        """RFC 7662 §2.2. A token for several hospitals is described where it is still valid
        (and, to a hospital key, at its hospital only): ``aud`` the array of those hospitals'
        base URLs, ``hospitals`` their parts (scope, grant serial) as in the token, ``scope``
        the union of their scopes. A resource server told "active" may then trust ``aud``."""
        if token.approval is not None:
            return _describe_refresh_token(token.approval)
        claims = token.claims
        body = {
            "active": True,
            "scope": claims["scope"],
            "client_id": claims["client_id"],
            "token_type": "Bearer",
            "exp": claims["exp"],
            "iat": claims["iat"],
            "sub": claims["sub"],
            "aud": claims["aud"],
            "iss": claims["iss"],
            "jti": claims["jti"],
        }
        if isinstance(claims["aud"], list):
            parts = {hospital_id: claims["hospitals"][hospital_id] for hospital_id in token.live}
            body["aud"] = [fhir_base_url(hospital_id) for hospital_id in parts]
            carried = {scope for part in parts.values() for scope in split_scope(part["scope"])}
            body["scope"] = " ".join(scope for scope in split_scope(claims["scope"]) if scope in carried)
            body["hospitals"] = parts
        if "patient" in claims:
            body["patient"] = claims["patient"]
        if "fhirUser" in claims:
            body["fhirUser"] = claims["fhirUser"]
        return body


class RevocationEndpoint(_RevocationEndpoint):
    # A public client revokes its own tokens naming itself (RFC 7009 §2.1).
    CLIENT_AUTH_METHODS = [*_AUTH_METHODS, NONE]

    def check_params(self, request, client):
        """RFC 7009 §2.1: ``token`` is required; ``token_type_hint`` is only a hint, and one the
        server does not know is ignored (the search goes on across every token type)."""
        if not request.form.get("token"):
            raise InvalidRequestError("The token parameter is missing.")

    authenticate_endpoint_client = IntrospectionEndpoint.authenticate_endpoint_client

    def query_token(self, token_string, token_type_hint):
        return _query_token(token_string, token_type_hint)

    def revoke_token(self, token: PresentedToken, request) -> None:
        """An access token alone; a refresh token with its whole approval (RFC 7009 §2.1:
        "SHOULD also invalidate all access tokens based on the same authorization grant")."""
        if token.approval is not None:
            # Even through a token already used: the client wants the whole approval ended.
            if token.approval.revoked_at is None:
                revoke_authorization(token.approval, "refresh token revoked by its client")
        elif token.live:
            revoke_token_id(token.claims)


def _describe_refresh_token(approval: Authorization) -> dict:
    body = {
        "active": True,
        "token_type": "refresh_token",
        "scope": approval.scope,
        "client_id": approval.client_id,
        "sub": str(approval.user_id),
        "patient": approval.patient_id,
        "aud": fhir_base_url(approval.hospital_id),
        "iss": current_app.config["FHIRGATE_BASE_URL"],
        "iat": int(as_utc(approval.created_at).timestamp()),
    }
    if approval.expires_at is not None:
        body["exp"] = int(as_utc(approval.expires_at).timestamp())
    return body
