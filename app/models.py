"""Hospitals, people and their web sessions."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timeutil import utcnow

ROLES = ("superadmin", "hospital-admin", "developer", "patient", "clinician")
# Hospital staff who open a patient's record and launch apps in it (SMART EHR launch): their
# apps' user/ scopes reach this much of their hospital's data.
CLINICIAN_ALLOWANCE = "user/*.rs"
HOSPITAL_ID_PATTERN = r"[a-z0-9-]{2,40}"
HOSPITAL_ID = re.compile(HOSPITAL_ID_PATTERN)
SANDBOX_HOSPITAL_ID = "sandbox"


class Hospital(db.Model):
    __tablename__ = "hospitals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The FHIR API's rate limits in points (fhir/fair_share.py), e.g. "30000/minute"; None: the
    # operator's defaults (FHIRGATE_FHIR_CLIENT_LIMIT, FHIRGATE_FHIR_HOSPITAL_LIMIT).
    fhir_client_limit: Mapped[str | None] = mapped_column(String(40))
    fhir_hospital_limit: Mapped[str | None] = mapped_column(String(40))


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('superadmin', 'hospital-admin', 'developer', 'patient', 'clinician')", name="role"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    hospital_id: Mapped[str | None] = mapped_column(
        ForeignKey("hospitals.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[str | None] = mapped_column(String(64))
    # A clinician's own Practitioner in the hospital's store: their fhirUser in an EHR launch.
    practitioner_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Set by the hospital's admin: the account cannot log in, and its sessions have ended.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(db.Model):
    """A login session; the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsedForm(db.Model):
    """A one-time form (e.g. "generate credentials") that was submitted: a second submit of it,
    by reload or the back button, must not act again or show its secret again."""

    __tablename__ = "web_used_forms"

    form_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LoginFailure(db.Model):
    """Failed logins in a fixed window, shared by every worker and host (``app/login_limits.py``):
    ``key`` is an HMAC of what is counted (an account, an address, a known browser), so no
    e-mail, address or mistyped password is stored."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    window_ends: Mapped[int] = mapped_column(BigInteger)  # Unix time (s) the window closes
