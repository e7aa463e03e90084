"""CSRF tokens for every form: an HMAC of the login session (or, before login, of a random
cookie) under the server's secret key, so a page on another site can neither read nor forge one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from flask import current_app, g, request

from app.sessions import COOKIE_NAME
from app.web import bp
from app.web.pages import WebError

FIELD = "csrf_token"
PRE_SESSION_COOKIE = "fhirgate_csrf"
# Forms other sites send by design: SMART's authorize-post only asks; nothing acts before the
# patient's own decision, which carries the token.
CROSS_SITE_FORMS = frozenset({"web.authorize"})


def _binding() -> str:
    session = request.cookies.get(COOKIE_NAME)
    if session:
        return "session:" + session
    value = request.cookies.get(PRE_SESSION_COOKIE) or g.get("new_csrf_cookie")
    if not value:
        value = g.new_csrf_cookie = secrets.token_urlsafe(32)
    return "anonymous:" + value


def csrf_token() -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"fhirgate-csrf|" + _binding().encode(), hashlib.sha256).hexdigest()


@bp.app_context_processor
def _expose_token() -> dict:
    return {"csrf_token": csrf_token}


@bp.before_request
def _check_token() -> None:
    if request.method != "POST" or request.endpoint in CROSS_SITE_FORMS:
        return
    sent = request.form.get(FIELD, "")
    if g.get("new_csrf_cookie") or not hmac.compare_digest(sent.encode(), csrf_token().encode()):
        raise WebError(
            400, "This form has expired or did not come from this site. Reload the page and try again."
        )


@bp.after_app_request
def _set_cookie(response):
    value = g.pop("new_csrf_cookie", None)
    if value:
        secure = urlsplit(current_app.config["FHIRGATE_BASE_URL"]).scheme == "https" or request.is_secure
        response.set_cookie(
            PRE_SESSION_COOKIE, value, httponly=True, samesite="Strict", secure=secure, path="/"
        )
    return response
