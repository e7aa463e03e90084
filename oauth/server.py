"""The Authlib authorization server, its endpoints and their rate limits."""

from __future__ import annotations

import orjson
from authlib.integrations.flask_oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error, UnsupportedGrantTypeError
from flask import Blueprint, Flask, Response, current_app, g, request

from app.extensions import db
from oauth import token_limits
from oauth.audience import token_endpoint_url
from oauth.bearer import InsufficientScopeError, InvalidTokenError, userinfo
from oauth.client_assertion import authenticate_private_key_jwt
from oauth.client_auth import (
    authenticate_client_secret_basic,
    authenticate_client_secret_post,
    authenticate_none,
)
from oauth.client_jwk import ASSERTION_ALGORITHMS
from oauth.code_grants import AuthorizationCodeGrant, RefreshTokenGrant
from oauth.endpoint_request import (
    FORM_CONTENT_TYPE,
    MAX_BODY_BYTES,
    EndpointRequest,
    claimed_client_id,
    parse_endpoint_request,
)
from oauth.epoch_reader import init_epoch_reader
from oauth.errors import RateLimitedError, UnsupportedGrantError
from oauth.grants import ClientCredentialsGrant
from oauth.introspection import IntrospectionEndpoint, RevocationEndpoint
from oauth.jwks_fetch import JwksCache
from oauth.keys import ID_TOKEN_ALGORITHM, init_keyring, keyring
from oauth.models import OAuthClient
from oauth.refresh_fast_path import RefreshFastPath
from oauth.scopes import SCOPES_SUPPORTED
from oauth.token_fast_path import TokenFastPath
from oauth.validity import ValidityCache

_MAX_CLIENT_ID_LENGTH = 64

bp = Blueprint("oauth", __name__)


class AuthorizationServer(_AuthorizationServer):
    """Authlib's server with our client lookup and strict request parsing."""

    def query_client(self, client_id: str) -> OAuthClient | None:
        """The client from the worker's cache, which the revocation epoch keeps current."""
        if len(client_id) > _MAX_CLIENT_ID_LENGTH:
            return None
        found = current_app.extensions["fhirgate_validity"].endpoint_client(client_id)
        return found[0] if found is not None else None

    def get_token_grant(self, request):
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError:
            raise UnsupportedGrantError() from None

    def save_token(self, token, request) -> None:
        """Access tokens are never stored (see ``oauth.tokens``)."""

    def create_oauth2_request(self, request) -> EndpointRequest:
        return g.oauth_request

    def handle_response(self, status_code, payload, headers):
        body = orjson.dumps(payload) if isinstance(payload, dict) else payload
        return Response(body, status=status_code, headers=headers)

    def respond(self, endpoint: str | None) -> Response:
        """Parse the Flask request strictly, then let Authlib answer it."""
        try:
            g.oauth_request = parse_endpoint_request(request)
            if endpoint is None and not request.form.get("grant_type"):
                raise InvalidRequestError("The grant_type parameter is missing.")
        except OAuth2Error as error:
            return self.handle_error_response(None, error)
        if endpoint is None:
            return self.create_token_response()
        return self.create_endpoint_response(endpoint)


def _server() -> AuthorizationServer:
    return current_app.extensions["fhirgate_oauth_server"]


def _limited(endpoint: str | None) -> Response:
    """Answer a request to one of the three endpoints under ``oauth.token_limits``: refused
    (429) before anything else if its address and claimed client id have used up their
    failures (or, at the token endpoint, the client its requests); counted once answered."""
    per_client = endpoint is None  # only tokens are limited per client
    client_id, address = claimed_client_id(request), request.remote_addr
    wait = token_limits.retry_after(client_id, address, per_client=per_client)
    if wait is not None:
        return rate_limited_response(wait)
    if per_client and _grant_type() == "client_credentials":
        # Reads, and single-statement writes only (last use, a refused assertion's reason):
        # without a transaction the epoch read is one round trip, with no BEGIN and ROLLBACK.
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    response = _server().respond(endpoint)
    authenticated = getattr(g.get("oauth_request"), "authenticated", None)
    token_limits.count(authenticated, client_id, address, response.status_code, per_client=per_client)
    return response


def _grant_type() -> str | None:
    """The request's ``grant_type``, if its body is a form small enough to read."""
    if request.mimetype != FORM_CONTENT_TYPE or (request.content_length or 0) > MAX_BODY_BYTES:
        return None
    return request.form.get("grant_type")


@bp.post("/oauth/token")
def token():
    """RFC 6749 §3.2 token endpoint (its common requests are answered by ``TokenFastPath``)."""
    return _limited(None)


@bp.post("/oauth/introspect")
def introspect():
    """RFC 7662 §2."""
    return _limited(IntrospectionEndpoint.ENDPOINT_NAME)


@bp.post("/oauth/revoke")
def revoke():
    """RFC 7009 §2."""
    return _limited(RevocationEndpoint.ENDPOINT_NAME)


@bp.get("/oauth/jwks")
def jwks():
    """The public signing keys, including rotated-out ones whose tokens may still be live."""
    response = Response(orjson.dumps(keyring().jwks()), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


# What the token endpoint accepts, over every grant: a public client authenticates with nothing.
TOKEN_AUTH_METHODS = [*ClientCredentialsGrant.TOKEN_ENDPOINT_AUTH_METHODS, "none"]
GRANT_TYPES = ["authorization_code", "client_credentials", "refresh_token"]
# Scopes that give context or refresh tokens rather than resources (SMART App Launch §"Scopes").
CONTEXT_SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
]


@bp.get("/.well-known/oauth-authorization-server")
def metadata():
    """RFC 8414 §2 authorization server metadata."""
    issuer = current_app.config["FHIRGATE_BASE_URL"]
    auth_methods = ClientCredentialsGrant.TOKEN_ENDPOINT_AUTH_METHODS
    algorithms = list(ASSERTION_ALGORITHMS)
    body = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": token_endpoint_url(),
        "jwks_uri": f"{issuer}/oauth/jwks",
        "grant_types_supported": GRANT_TYPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": [*auth_methods, "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
        "scopes_supported": [*CONTEXT_SCOPES_SUPPORTED, *SCOPES_SUPPORTED],
        "service_documentation": f"{issuer}/",
    }
    return Response(orjson.dumps(body), mimetype="application/json")


# Each one works, and is tested (tests/oauth/test_smart_launch*.py, test_private_key_jwt.py).
SMART_CAPABILITIES = [
    "launch-standalone",
    "launch-ehr",
    "authorize-post",
    "sso-openid-connect",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-standalone-patient",
    "context-ehr-patient",
    "context-banner",
    "context-style",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]


@bp.get("/.well-known/openid-configuration")
def openid_configuration():
    """OpenID Connect Discovery 1.0 §3, at the ID tokens' ``iss``."""
    issuer = current_app.config["FHIRGATE_BASE_URL"]
    body = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": token_endpoint_url(),
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/oauth/jwks",
        "scopes_supported": [*CONTEXT_SCOPES_SUPPORTED, *SCOPES_SUPPORTED],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALGORITHM, "ES256"],
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "fhirUser"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
    return Response(orjson.dumps(body), mimetype="application/json")


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo_endpoint():
    """OpenID Connect Core 1.0 §5.3; errors as RFC 6750 §3."""
    try:
        body = userinfo(request.headers.get("Authorization"))
    except (InvalidTokenError, InsufficientScopeError) as error:
        code, status = (
            ("invalid_token", 401) if isinstance(error, InvalidTokenError) else ("insufficient_scope", 403)
        )
        challenge = f'Bearer realm="fhirgate", error="{code}", error_description="{error}"'
        answer = {"error": code, "error_description": str(error)}
        return Response(
            orjson.dumps(answer), status, mimetype="application/json", headers={"WWW-Authenticate": challenge}
        )
    response = Response(orjson.dumps(body), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


# SMART App Launch §"Styling": what an app launched from the EHR may use to look like it.
SMART_STYLE = {
    "color_background": "#ffffff",
    "color_error": "#b3261e",
    "color_highlight": "#0b57d0",
    "color_modal_backdrop": "rgba(27, 31, 36, 0.5)",
    "color_success": "#1e7b34",
    "color_text": "#1b1f24",
    "dim_border_radius": "6px",
    "dim_font_size": "16px",
    "dim_spacing_size": "16px",
    "font_family_body": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    "font_family_heading": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
}


@bp.get("/smart-style.json")
def smart_style():
    response = Response(orjson.dumps(SMART_STYLE), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def smart_configuration() -> dict:
    """SMART App Launch 2.x §"Metadata" (``.well-known/smart-configuration``): exactly what
    works — standalone and EHR launches (authorization code, PKCE S256 only), OpenID Connect,
    refresh tokens, and the client-credentials grant of Backend Services."""
    issuer = current_app.config["FHIRGATE_BASE_URL"]
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/oauth/jwks",
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": token_endpoint_url(),
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": [*CONTEXT_SCOPES_SUPPORTED, *SCOPES_SUPPORTED],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": SMART_CAPABILITIES,
        "management_endpoint": f"{issuer}/portal/apps",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
    }


def oauth_error_response(error: OAuth2Error) -> Response:
    """Render an OAuth error raised outside Authlib's own flow (RFC 6749 §5.2 body)."""
    return _server().handle_error_response(None, error)


def rate_limited_response(retry_after: int) -> Response:
    return oauth_error_response(RateLimitedError(retry_after))


def init_oauth(app: Flask) -> None:
    """Wire the authorization server, its endpoints and signing keys into ``app``."""
    init_keyring(app)
    app.extensions["fhirgate_validity"] = ValidityCache()
    with app.app_context():
        init_epoch_reader(app, db.engine)
    app.extensions["fhirgate_jwks_cache"] = JwksCache()
    server = AuthorizationServer(app)
    server.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
    server.register_client_auth_method("client_secret_post", authenticate_client_secret_post)
    server.register_client_auth_method("private_key_jwt", authenticate_private_key_jwt)
    server.register_client_auth_method("none", authenticate_none)
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(AuthorizationCodeGrant)
    server.register_grant(RefreshTokenGrant)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(RevocationEndpoint)
    app.extensions["fhirgate_oauth_server"] = server
    app.register_blueprint(bp)
    app.wsgi_app = RefreshFastPath(app, app.wsgi_app)
    app.wsgi_app = TokenFastPath(app, app.wsgi_app)
