"""What a hospital sees of its patients' access, and the portal-login switch: shared by the
management API (``app/api/patient_access.py``) and the admin portal (``app/web/admin_patients.py``)."""

from __future__ import annotations

from sqlalchemy import select

from app.api.serialize import approval_json, credential
from app.extensions import db
from app.models import User
from app.sessions import end_sessions_of
from app.timeutil import utcnow
from oauth import (
    PATIENT_CREDENTIAL,
    OAuthClient,
    active_clients,
    authorizations_at,
    authorizations_of,
    revoke_authorization,
)


def patient_access(hospital_id: str) -> dict:
    """The key pairs, approvals and portal logins of a hospital's patients."""
    return {
        "credentials": [
            credential(c, patient=c.patient_id)
            for c in active_clients(PATIENT_CREDENTIAL, hospital_id=hospital_id)
        ],
        "authorizations": [
            approval_json(a, db.session.get(OAuthClient, a.client_id)) for a in authorizations_at(hospital_id)
        ],
        "logins": [
            {"email": u.email, "patient": u.patient_id, "disabled": u.disabled_at is not None}
            for u in db.session.scalars(
                select(User)
                .where(User.hospital_id == hospital_id, User.role == "patient")
                .order_by(User.email)
            )
        ],
    }


def set_portal_login(hospital_id: str, patient_id: str, disabled: bool) -> User | None:
    """Disable or enable the portal logins of a hospital's patient (every one they have); None
    if they have none. Disabling logs them out everywhere and ends every app approval they
    gave, with its tokens (enabling again revives none of them)."""
    users = list(
        db.session.scalars(
            select(User)
            .where(User.hospital_id == hospital_id, User.role == "patient", User.patient_id == patient_id)
            .order_by(User.id)
        )
    )
    for user in users:
        user.disabled_at = (user.disabled_at or utcnow()) if disabled else None
        if disabled:
            end_sessions_of(user)
    db.session.commit()
    if disabled:
        for user in users:
            for approval in authorizations_of(user.id):
                if approval.revoked_at is None:
                    revoke_authorization(approval, "portal login disabled by the hospital")
    return users[0] if users else None
