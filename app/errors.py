"""One error family per surface, converted in one place.

``/oauth/*`` answers RFC 6749 §5.2 bodies, ``/api/*`` and everything else answers
``{"error", "message"}`` JSON. No response ever carries a stack trace or SQL.
"""

from __future__ import annotations

import logging
import traceback

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from flask import Flask, Response, current_app, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from app.time_limits import TimeLimitExceeded, was_cancelled
from fhir.errors import FhirError
from fhir.http import outcome_response
from oauth import oauth_error_response, rate_limited_response
from oauth.errors import RequestTooLargeError

log = logging.getLogger(__name__)

_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ApiError(Exception):
    """A management API error: HTTP status, a short code and a message for people."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message

    @classmethod
    def not_found(cls, what: str = "resource") -> ApiError:
        return cls(404, f"No such {what}.")


# RFC 9110 §15.5.2: a 401 names how to authenticate. The portals and /api log in with a form
# and keep a session cookie; HTTP registers no scheme for that, so the challenge follows the
# cookie scheme once drafted for it (draft-broyer-http-cookie-auth): where to log in, which cookie.
SESSION_CHALLENGE = 'Cookie realm="fhirgate", form-action="/login", cookie-name="fhirgate_session"'


def api_error_response(status: int, message: str, code: str | None = None) -> Response:
    response = jsonify(error=code or _CODES.get(status, "error"), message=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = SESSION_CHALLENGE
    return response


def _retry_after(error: HTTPException) -> int:
    header = error.get_response().headers.get("Retry-After")
    try:
        return max(1, int(header)) if header else 60
    except ValueError:
        return 60


def _handle_http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if request.path.startswith("/fhir/"):
        return _fhir_error(
            FhirError.simple(status, _FHIR_CODES.get(status, "processing"), error.description or "Failed.")
        )
    if request.path.startswith("/oauth/"):
        if status == 429:
            return rate_limited_response(_retry_after(error))
        if status == 413:
            return oauth_error_response(RequestTooLargeError())
        if status == 405:
            response = oauth_error_response(InvalidRequestError("Use POST."))
            response.status_code = 405
            response.headers["Allow"] = "POST"
            return response
        response = oauth_error_response(InvalidRequestError(error.description or "Bad request."))
        response.status_code = status  # e.g. 404 for an unknown /oauth/ path, in the RFC 6749 shape
        return response
    response = api_error_response(status, error.description or "Request failed.")
    if status == 429:
        response.headers["Retry-After"] = str(_retry_after(error))
    if status == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


_FHIR_CODES = {
    400: "invalid",
    404: "not-found",
    405: "not-supported",
    413: "too-costly",
    429: "throttled",
    415: "not-supported",
}


def _fhir_error(error: FhirError) -> Response:
    response = outcome_response(error)
    if error.status == 429:
        response.headers.setdefault("Retry-After", "60")
    return response


def _handle_api_error(error: ApiError) -> Response:
    return api_error_response(error.status, error.message, error.code)


def _handle_time_limit(error: Exception) -> Response:
    """A request that spent its time budget, or a statement stopped by its timeout
    (``app.time_limits``); any other database error is unexpected."""
    if isinstance(error, OperationalError) and not was_cancelled(error):
        return _handle_unexpected(error)
    limit = current_app.config["FHIRGATE_REQUEST_TIME_LIMIT_S"]
    message = f"The request took too long (each may take {limit} s at most); narrow it down."
    if request.path.startswith("/fhir/"):
        return _fhir_error(FhirError.simple(400, "too-costly", message))
    if request.path.startswith("/oauth/"):
        return oauth_error_response(InvalidRequestError(message))
    return api_error_response(400, message, "too_costly")


def _handle_unexpected(error: Exception) -> Response:
    # Only the exception type and where it was raised: a traceback or message could
    # carry SQL, parameters or secrets into the logs.
    frame = traceback.extract_tb(error.__traceback__)[-1:] or [None]
    where = f"{frame[0].filename}:{frame[0].lineno}" if frame[0] else "?"
    log.error("unhandled %s at %s on %s %s", type(error).__name__, where, request.method, request.path)
    if request.path.startswith("/fhir/"):
        return _fhir_error(FhirError.simple(500, "exception", "The server failed to handle this request."))
    return api_error_response(500, "The server failed to handle this request.", "server_error")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(FhirError, _fhir_error)
    app.register_error_handler(HTTPException, _handle_http_error)
    app.register_error_handler(TimeLimitExceeded, _handle_time_limit)
    app.register_error_handler(OperationalError, _handle_time_limit)
    app.register_error_handler(Exception, _handle_unexpected)
