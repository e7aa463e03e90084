"""Log in and out in a browser, and land on the page of one's role."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from app.errors import SESSION_CHALLENGE
from app.login_limits import login_throttled
from app.sessions import (
    MAX_EMAIL,
    check_login,
    current_user,
    end_session,
    forget_current_session,
    start_session,
)
from app.web import bp
from app.web.pages import WebError

MAX_PASSWORD = 1024


def landing_url(user) -> str:
    if user.role == "patient":
        return url_for("web.portal")
    if user.role == "hospital-admin" and user.hospital_id:
        return url_for("web.admin_home", hid=user.hospital_id)
    if user.role == "developer":
        return url_for("web.developer_home")
    if user.role == "clinician":
        return url_for("web.ehr_home")
    return url_for("web.account")


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: ``/x``, never ``//host`` or ``/\\host`` or a scheme."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    # Long enough for an authorization request waiting for its patient to log in.
    if any(ch in target for ch in "\r\n\t") or len(target) > 8000:
        return None
    return target


@bp.get("/login")
def login_form():
    user = current_user()
    if user is not None:
        return redirect(safe_next(request.args.get("next")) or landing_url(user))
    return render_template("web/login.html", next=safe_next(request.args.get("next")), error=None)


@bp.post("/login")
@login_throttled(lambda: request.form.get("email"))
def login():
    """The same message and the same work for an unknown e-mail and a wrong password."""
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    target = safe_next(request.form.get("next"))
    if not email or not password or len(email) > MAX_EMAIL or len(password) > MAX_PASSWORD:
        page = render_template(
            "web/login.html", next=target, error="Enter your e-mail and password.", email=email
        )
        return page, 401, {"WWW-Authenticate": SESSION_CHALLENGE}
    user = check_login(email, password)
    if user is None:
        page = render_template("web/login.html", next=target, error="Wrong e-mail or password.", email=email)
        return page, 401, {"WWW-Authenticate": SESSION_CHALLENGE}
    response = redirect(target or landing_url(user), code=303)
    forget_current_session()
    start_session(user, response)
    return response


@bp.post("/logout")
def logout():
    response = redirect(url_for("web.login_form", bye=1), code=303)
    end_session(response)
    return response


@bp.get("/account")
def account():
    user = signed_in()
    return render_template("web/account.html", user=user)


def signed_in(*roles: str):
    """The logged-in user (of one of ``roles``); else off to the login page, or 403."""
    user = current_user()
    if user is None:
        raise _LoginRequired()
    if roles and user.role not in roles:
        raise WebError(403, "Your account may not open this page.")
    return user


class _LoginRequired(Exception):
    """No one is logged in: the error handler below sends the browser to the login form."""


@bp.errorhandler(_LoginRequired)
def _to_login(_error):
    return redirect(url_for("web.login_form", next=request.full_path.rstrip("?")), code=303)
