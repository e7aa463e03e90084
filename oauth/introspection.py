"""RFC 7662 token introspection and RFC 7009 token revocation."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from oauth.audience import hospital_for_resource
from oauth.grants import authenticate_endpoint_client
from oauth.jws import JwsError
from oauth.models import HOSPITAL_KEY, KEY_AUTH_METHOD, OAuthClient
from oauth.tokens import decode_access_token, revoke_token_id, token_client_if_active

_AUTH_METHODS = ["client_secret_basic", "client_secret_post", KEY_AUTH_METHOD]


@dataclass
class PresentedToken:
    """A verified access token presented to introspection or revocation."""

    claims: dict
    active_client: OAuthClient | None

    def check_client(self, client: OAuthClient) -> bool:
        return self.claims["client_id"] == client.client_id

    def is_expired(self) -> bool:
        return self.active_client is None

    def is_revoked(self) -> bool:
        return self.active_client is None


def _query_token(token_string: str, token_type_hint: str | None) -> PresentedToken | None:
    """The hint is not used: this server issues access tokens only, and RFC 7009 §2.1 has a
    search by a hint that finds nothing go on across every type the server issues."""
    try:
        claims = decode_access_token(token_string)
    except JwsError:
        return None
    return PresentedToken(claims, token_client_if_active(claims))


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
        """A client sees its own tokens; a hospital key also those aimed at its hospital."""
        if token.check_client(client):
            return True
        return (
            client.kind == HOSPITAL_KEY and hospital_for_resource(token.claims["aud"]) == client.hospital_id
        )

    def introspect_token(self, token: PresentedToken) -> dict:
        """RFC 7662 §2.2."""
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
        if "patient" in claims:
            body["patient"] = claims["patient"]
        return body


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = _AUTH_METHODS

    def check_params(self, request, client):
        """RFC 7009 §2.1: ``token`` is required; ``token_type_hint`` is only a hint, and one the
        server does not know is ignored (the search goes on across every token type)."""
        if not request.form.get("token"):
            raise InvalidRequestError("The token parameter is missing.")

    authenticate_endpoint_client = IntrospectionEndpoint.authenticate_endpoint_client

    def query_token(self, token_string, token_type_hint):
        return _query_token(token_string, token_type_hint)

    def revoke_token(self, token: PresentedToken, request) -> None:
        if token.active_client is not None:
            revoke_token_id(token.claims)
