"""Server-side login sessions for the management API and the portals.

The cookie carries 256 random bits; the table keeps only their SHA-256, so a database
dump yields no usable session. Logout deletes the row, which ends the session everywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import Response, current_app, g, request
from sqlalchemy import delete, func, select

from app.errors import ApiError
from app.extensions import db
from app.models import User, WebSession
from app.passwords import verify_password
from app.timeutil import as_utc, utcnow

COOKIE_NAME = "fhirgate_session"
MAX_EMAIL = 320


def cookies_are_secure() -> bool:
    """Cookies get ``Secure`` when the public base URL or the request itself is https."""
    return urlsplit(current_app.config["FHIRGATE_BASE_URL"]).scheme == "https" or request.is_secure


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def check_login(email: str, password: str) -> User | None:
    """The user whose password this is; equal work whether or not the e-mail exists."""
    user = find_user_by_email(email)
    ok = verify_password(user.password_hash if user else None, password)
    return user if user and ok and user.disabled_at is None else None


def start_session(user: User, response: Response) -> None:
    """Issue a fresh session id (never reuse one from before login) as a cookie."""
    token = secrets.token_urlsafe(32)
    ttl = current_app.config["FHIRGATE_SESSION_TTL"]
    now = utcnow()
    db.session.execute(delete(WebSession).where(WebSession.expires_at < now))
    db.session.add(
        WebSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    db.session.commit()
    response.set_cookie(
        COOKIE_NAME, token, max_age=ttl, httponly=True, samesite="Lax", secure=cookies_are_secure(), path="/"
    )


def current_session_hash() -> str | None:
    """The stored hash of the session the request presents (its ``web_sessions`` key)."""
    token = request.cookies.get(COOKIE_NAME)
    return _token_hash(token) if token and len(token) < 200 else None


def end_sessions_of(user: User) -> None:
    """Log the user out everywhere (the caller commits)."""
    db.session.execute(delete(WebSession).where(WebSession.user_id == user.id))


def forget_current_session() -> None:
    """Delete the server-side row of the session the request presents, if any."""
    token = request.cookies.get(COOKIE_NAME)
    if token:
        db.session.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))
        db.session.commit()
    g.pop("current_user", None)


def end_session(response: Response) -> None:
    forget_current_session()
    response.delete_cookie(COOKIE_NAME, path="/")


def current_user() -> User | None:
    if "current_user" in g:
        return g.current_user
    user = None
    token = request.cookies.get(COOKIE_NAME)
    if token and len(token) < 200:
        row = db.session.get(WebSession, _token_hash(token))
        if row is not None and as_utc(row.expires_at) > utcnow():
            user = db.session.get(User, row.user_id)
            if user is not None and user.disabled_at is not None:
                user = None
    g.current_user = user
    return user


def require_user(*roles: str):
    """View decorator: 401 without a session, 403 with a role not in ``roles``."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                raise ApiError(401, "Log in first: POST /api/session.")
            if roles and user.role not in roles:
                raise ApiError(403, "Your role may not do this.")
            return view(*args, **kwargs)

        return wrapper

    return decorate
