"""Creating hospitals and people; shared by the CLI and the management API."""

from __future__ import annotations

from app.extensions import db
from app.models import HOSPITAL_ID, HOSPITAL_ID_PATTERN, ROLES, Hospital, User
from app.passwords import MIN_PASSWORD_LENGTH, hash_password
from app.sessions import find_user_by_email
from app.timeutil import utcnow
from oauth.validity import bump_epoch


class AccountError(ValueError):
    """The request cannot be carried out; ``conflict`` when something already exists."""

    def __init__(self, message: str, conflict: bool = False):
        super().__init__(message)
        self.conflict = conflict


def create_hospital(hospital_id: str, name: str) -> Hospital:
    if not HOSPITAL_ID.fullmatch(hospital_id):
        raise AccountError(f"hospital ids are {HOSPITAL_ID_PATTERN}")
    if db.session.get(Hospital, hospital_id) is not None:
        raise AccountError(f"hospital {hospital_id} already exists", conflict=True)
    hospital = Hospital(id=hospital_id, name=name, created_at=utcnow())
    db.session.add(hospital)
    bump_epoch()  # workers cache which hospitals applications reach (the sandbox, at once)
    db.session.commit()
    return hospital


def set_hospital_limits(hospital_id: str, **limits: str | None) -> Hospital:
    """Set a hospital's FHIR API rate limits (``fhir_client_limit``, ``fhir_hospital_limit``):
    points per period such as ``30000/minute``, or None for the operator's defaults."""
    from fhir.fair_share import valid_rate

    hospital = db.session.get(Hospital, hospital_id)
    if hospital is None:
        raise AccountError(f"no hospital {hospital_id}")
    for name, value in limits.items():
        if value is not None and not valid_rate(value):
            raise AccountError(f"{value!r} is not a rate such as 30000/minute")
        setattr(hospital, name, value)
    db.session.commit()
    return hospital


def create_user(
    email: str,
    password: str,
    role: str,
    *,
    hospital_id: str | None = None,
    patient_id: str | None = None,
    practitioner_id: str | None = None,
) -> User:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    if role in ("hospital-admin", "patient", "clinician") and not hospital_id:
        raise AccountError(f"a {role} belongs to a hospital")
    if role == "patient" and not patient_id:
        raise AccountError("a patient user needs a Patient id")
    if role != "patient" and patient_id:
        raise AccountError("only patient users have a Patient id")
    if role != "clinician" and practitioner_id:
        raise AccountError("only clinicians have a Practitioner id")
    if hospital_id and db.session.get(Hospital, hospital_id) is None:
        raise AccountError(f"no hospital {hospital_id}")
    if find_user_by_email(email) is not None:
        raise AccountError("a user with this e-mail exists already", conflict=True)
    user = User(
        email=email.strip().lower(),
        password_hash=hash_password(password),
        role=role,
        hospital_id=hospital_id if role != "developer" and role != "superadmin" else None,
        patient_id=patient_id,
        practitioner_id=practitioner_id,
        created_at=utcnow(),
    )
    db.session.add(user)
    db.session.commit()
    return user
