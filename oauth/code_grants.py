"""The grants of the SMART App Launch at the token endpoint: the authorization code (RFC 6749
§4.1.3, with PKCE) and the refresh token (§6), both under a patient's approval
(``oauth.authorizations``). Confidential clients authenticate as for client credentials; a
public client (``none``) sends its ``client_id`` alone.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from flask import current_app

from app.extensions import db
from oauth.authorizations import (
    new_refresh_token,
    note_authorization_used,
    redeem_code,
    redeem_refresh_token,
    refresh_token_client,
    seconds_left,
)
from oauth.endpoint_request import NONE
from oauth.grants import authenticate_endpoint_client, note_client_used, token_lifetime
from oauth.id_tokens import issue_id_token
from oauth.models import KEY_AUTH_METHOD, Authorization, OAuthClient
from oauth.patient_consent import refresh_kind
from oauth.scopes import split_scope
from oauth.tokens import approval_response, issue_authorized_token

AUTH_METHODS = ["client_secret_basic", "client_secret_post", KEY_AUTH_METHOD, NONE]


class _ApprovalGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def authenticated_client(self) -> OAuthClient:
        client = authenticate_endpoint_client(
            self.server, self.request, self.TOKEN_ENDPOINT_AUTH_METHODS, "token"
        )
        self.request.client = client
        return client

    def required(self, name: str) -> str:
        value = self.request.form.get(name)
        if not value:
            raise InvalidRequestError(f"The {name} parameter is missing.")
        return value

    def respond(self, approval: Authorization, scope: str, *, id_token: bool = False):
        """The token response (RFC 6749 §5.1, SMART App Launch §"Response"): an access token
        living no longer than the approval, ``patient`` for ``launch/patient``, and a new refresh
        token for ``offline_access``/``online_access``."""
        client = self.request.client
        lifetime = token_lifetime(self.request.client_credentials[0])
        left = seconds_left(approval)
        if left is not None:
            if left <= 0:
                raise InvalidGrantError("The authorization has expired.")
            lifetime = min(lifetime, left)
        issued = issue_authorized_token(client, approval, scope, lifetime)
        body = approval_response(issued, approval.scope, current_app.config["FHIRGATE_BASE_URL"])
        if id_token and "openid" in split_scope(approval.scope):
            body["id_token"] = issue_id_token(client, approval)
        if refresh_kind(approval.scope):
            body["refresh_token"] = new_refresh_token(approval)
        note_authorization_used(approval)
        db.session.commit()
        note_client_used(client)
        return 200, body, self.TOKEN_RESPONSE_HEADER


class AuthorizationCodeGrant(_ApprovalGrant):
    GRANT_TYPE = "authorization_code"

    def validate_token_request(self) -> None:
        client = self.authenticated_client()
        form = self.request.form
        self.approval = redeem_code(
            self.required("code"), client, form.get("redirect_uri"), form.get("code_verifier")
        )

    def create_token_response(self):
        return self.respond(self.approval, self.approval.scope, id_token=True)


class RefreshTokenGrant(_ApprovalGrant):
    GRANT_TYPE = "refresh_token"

    def validate_token_request(self) -> None:
        token = self.required("refresh_token")
        method, client_id, _ = self.request.client_credentials
        if method == NONE and client_id is None:
            # A public client that named itself not at all: the one its refresh token names.
            self.request.client_credentials = (NONE, refresh_token_client(token) or "", None)
        client = self.authenticated_client()
        # RFC 6749 §6: a narrower scope for the new access token; the approval keeps its own.
        self.approval, self.scope = redeem_refresh_token(token, client, self.request.form.get("scope"))

    def create_token_response(self):
        return self.respond(self.approval, self.scope)
