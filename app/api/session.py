"""``/api/session``: log in and out."""

from __future__ import annotations

from flask import jsonify, make_response

from app.api import bp
from app.api.body import json_body, parsed_json, password_field, text_field
from app.errors import ApiError
from app.login_limits import login_throttled
from app.sessions import (
    check_login,
    current_user,
    end_session,
    forget_current_session,
    start_session,
)


def _submitted_email():
    body = parsed_json()
    return body.get("email") if isinstance(body, dict) else None


@bp.post("/session")
@login_throttled(_submitted_email)
def login():
    """Log in; failures slow down by address and by account (``app/login_limits.py``)."""
    body = json_body(required={"email", "password"})
    user = check_login(text_field(body, "email", max_length=320), password_field(body))
    if user is None:
        raise ApiError(401, "Wrong e-mail or password.")
    response = make_response(jsonify(_whoami(user)))
    forget_current_session()
    start_session(user, response)
    return response


@bp.get("/session")
def whoami():
    user = current_user()
    if user is None:
        raise ApiError(401, "Not logged in.")
    return jsonify(_whoami(user))


@bp.delete("/session")
def logout():
    response = make_response("", 204)
    end_session(response)
    return response


def _whoami(user) -> dict:
    return {"email": user.email, "role": user.role, "hospital": user.hospital_id, "patient": user.patient_id}
