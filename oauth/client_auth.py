"""Client authentication with a secret: ``client_secret_basic`` and ``client_secret_post``.

RFC 6749 §2.3.1. The credentials were already extracted by ``parse_endpoint_request``;
here they are checked against the stored keyed hash, in constant time, and the client
must be registered for the method it used.
"""

from __future__ import annotations

from oauth.credentials import secret_matches
from oauth.endpoint_request import BASIC, NONE, EndpointRequest
from oauth.errors import ClientAuthenticationFailed
from oauth.models import OAuthClient


def _authenticate_with_secret(query_client, request: EndpointRequest, method: str) -> OAuthClient:
    used_method, client_id, secret = request.client_credentials
    if used_method != method:
        return None  # another registered method handles this request
    client = query_client(client_id)
    usable = client is not None and client.active
    if not secret_matches(secret, client.secret_hash if usable else None):
        raise ClientAuthenticationFailed(basic=method == BASIC)
    if not client.check_endpoint_auth_method(method, "token"):
        raise ClientAuthenticationFailed(
            "This client is registered for another authentication method.", basic=method == BASIC
        )
    return client


def authenticate_client_secret_basic(query_client, request: EndpointRequest) -> OAuthClient:
    return _authenticate_with_secret(query_client, request, "client_secret_basic")


def authenticate_client_secret_post(query_client, request: EndpointRequest) -> OAuthClient:
    return _authenticate_with_secret(query_client, request, "client_secret_post")


def authenticate_none(query_client, request: EndpointRequest) -> OAuthClient:
    """A public client (``token_endpoint_auth_method`` ``none``) names itself and nothing more;
    a confidential client that does so has not authenticated."""
    used_method, client_id, _ = request.client_credentials
    if used_method != NONE:
        return None
    client = query_client(client_id) if client_id else None
    if client is None or not client.active or not client.check_endpoint_auth_method(NONE, "token"):
        raise ClientAuthenticationFailed("Client authentication is required (this is no public client).")
    return client
