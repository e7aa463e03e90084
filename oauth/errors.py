"""OAuth errors this server adds to Authlib's RFC 6749 family."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidClientError, OAuth2Error, UnsupportedGrantTypeError


class ClientAuthenticationFailed(InvalidClientError):
    """RFC 6749 §5.2 ``invalid_client``, always 401.

    Every 401 carries a challenge (RFC 9110 §15.5.2): ``Basic``, the one way of sending client
    credentials HTTP knows, with ``error="invalid_client"`` when the client used it (§5.2). The
    description never says whether the client id exists.
    """

    status_code = 401

    def __init__(self, description: str = "Client authentication failed.", *, basic: bool = False):
        super().__init__(description=description, status_code=401)
        self.basic = basic

    def get_headers(self):
        headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"),
        ]
        challenge = 'Basic realm="fhirgate"' + (', error="invalid_client"' if self.basic else "")
        headers.append(("WWW-Authenticate", challenge))
        return headers


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the ``resource`` is invalid, unknown or not reachable by this client."""

    error = "invalid_target"


class RequestTooLargeError(OAuth2Error):
    """The request body exceeds the token endpoint's limit (HTTP 413)."""

    error = "invalid_request"
    status_code = 413
    description = "The request body is too large."


class RateLimitedError(OAuth2Error):
    """Too many requests from this client or address (HTTP 429 with ``Retry-After``)."""

    error = "temporarily_unavailable"
    status_code = 429
    description = "Too many requests; retry after the number of seconds in Retry-After."

    def __init__(self, retry_after: int):
        super().__init__()
        self.retry_after = retry_after

    def get_headers(self):
        return super().get_headers() + [("Retry-After", str(self.retry_after))]


class UnsupportedGrantError(UnsupportedGrantTypeError):
    """RFC 6749 §5.2 ``unsupported_grant_type``, without echoing the client's value."""

    def __init__(self):
        super().__init__(None)

    def get_error_description(self):
        return "Only grant_type=client_credentials is supported."
