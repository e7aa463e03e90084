"""One-time forms: a form that creates a secret acts once; sent again (reload, back button) it
neither creates another credential nor shows the first one's secret."""

from __future__ import annotations

import hashlib
import secrets

from flask import request
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import UsedForm
from app.web.pages import WebError


def new_form_id() -> str:
    return secrets.token_urlsafe(24)


def submitted_form_id() -> str:
    form_id = request.form.get("form_id", "")
    if not 16 <= len(form_id) <= 64:
        raise WebError(400, "This form is incomplete; open it again.")
    return form_id


def first_use(user, form_id: str) -> bool:
    """Record the form as used (in the caller's transaction); False if it was used before."""
    db.session.add(UsedForm(form_hash=hashlib.sha256(form_id.encode()).hexdigest(), user_id=user.id))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    return True
