"""Browsers that have logged in to an account before ("device cookies", OWASP's *Slow Down
Online Guessing Attacks with Device Cookies*).

After a successful login the browser gets a cookie naming a random nonce, bound to the
account's e-mail by an HMAC under the server's secret. When it logs in to that account again,
its failures count against the nonce instead of the account (``app/login_limits.py``), so a
stranger hammering someone's e-mail locks out only browsers that never logged in as them,
never the owner's own. Nothing is stored: the HMAC proves the cookie is ours, and a stolen
one buys only the same few guesses a minute that any address gets.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Response, current_app, request

from app.sessions import cookies_are_secure

COOKIE_NAME = "fhirgate_device"
MAX_AGE_S = 365 * 24 * 3600
_MAX_COOKIE = 200


def _mac(email: str, nonce: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    message = f"fhirgate-device|{email}|{nonce}".encode("utf-8", "surrogatepass")  # JSON allows lone ones
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def known_browser(email: str) -> str | None:
    """The nonce of this browser's cookie if it logged in as ``email`` (normalised) before."""
    value = request.cookies.get(COOKIE_NAME, "")
    nonce, _, mac = value.partition(".")
    if not nonce or not mac or len(value) > _MAX_COOKIE:
        return None
    return nonce if hmac.compare_digest(mac.encode(), _mac(email, nonce).encode()) else None


def remember_browser(response: Response, email: str) -> None:
    """Mark this browser as one that logged in as ``email``, with a fresh nonce."""
    nonce = secrets.token_urlsafe(16)
    response.set_cookie(
        COOKIE_NAME,
        f"{nonce}.{_mac(email, nonce)}",
        max_age=MAX_AGE_S,
        httponly=True,
        samesite="Strict",  # only ever needed by this site's own login requests
        secure=cookies_are_secure(),
        path="/",
    )
