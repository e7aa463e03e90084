"""CORS for what a browser app calls: the FHIR API, the token, introspection, revocation, JWKS
and UserInfo endpoints, and the discovery documents (SMART App Launch §"CORS"; a public client
runs in a browser on its own origin).

``Access-Control-Allow-Origin: *`` and never ``Allow-Credentials``: a browser then sends no
cookies with these requests and shows nothing to a page that asked with them, so no site can
act with a signed-in person's portal session; these endpoints take bearer tokens and client
credentials, which a page must hold itself. The management API and the portals, which do use
the session cookie, get no CORS headers at all. A WSGI middleware outside the fast paths, so
their answers carry the headers too.
"""

from __future__ import annotations

CORS_PATHS = (
    "/fhir/",
    "/oauth/token",
    "/oauth/introspect",
    "/oauth/revoke",
    "/oauth/jwks",
    "/oauth/userinfo",
    "/.well-known/",
)
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = (
    "Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Match, If-None-Exist, "
    "If-Modified-Since, X-Request-Id, x-api-key, x-api-secret"
)
EXPOSED_HEADERS = (
    "Location, Content-Location, ETag, Last-Modified, WWW-Authenticate, Retry-After, X-Request-Id"
)
PREFLIGHT_MAX_AGE = "600"
_OURS = {"access-control-allow-origin", "access-control-expose-headers"}


class Cors:
    def __init__(self, wsgi_app, always_headers: dict[str, str]):
        self.wsgi_app = wsgi_app
        self.always = list(always_headers.items())

    def __call__(self, environ, start_response):
        if "HTTP_ORIGIN" not in environ or not environ.get("PATH_INFO", "").startswith(CORS_PATHS):
            return self.wsgi_app(environ, start_response)
        if environ.get("REQUEST_METHOD") == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            start_response(
                "204 No Content",
                [
                    ("Access-Control-Allow-Origin", "*"),
                    ("Access-Control-Allow-Methods", ALLOWED_METHODS),
                    ("Access-Control-Allow-Headers", ALLOWED_HEADERS),
                    ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
                    ("Content-Length", "0"),
                    *self.always,
                ],
            )
            return [b""]

        def start(status, headers, exc_info=None):
            headers = [(name, value) for name, value in headers if name.lower() not in _OURS]
            headers.append(("Access-Control-Allow-Origin", "*"))
            headers.append(("Access-Control-Expose-Headers", EXPOSED_HEADERS))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)
