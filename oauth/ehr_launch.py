"""EHR launch (SMART App Launch 2.x §"EHR launch"): a clinician opens a patient and launches an
application at its registered launch URL with ``iss`` and ``launch``; the authorization request
names that ``launch``, which is used once, lives a few minutes, and is bound to the application,
the hospital, the patient and the clinician who launched it."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update

from app.extensions import db
from app.timeutil import as_utc, utcnow
from oauth.credentials import hash_secret
from oauth.models import AppGrant, LaunchContext, OAuthClient

LAUNCH_TTL = timedelta(minutes=5)
LAUNCH_PREFIX = "ln_"
MAX_LAUNCH_LENGTH = 200


def start_launch(client: OAuthClient, hospital_id: str, patient_id: str, user_id: int) -> str:
    """Record a launch and return its ``launch`` value (shown once, in the launch URL)."""
    now = utcnow()
    db.session.execute(delete(LaunchContext).where(LaunchContext.expires_at < now - LAUNCH_TTL))
    launch = LAUNCH_PREFIX + secrets.token_urlsafe(24)
    db.session.add(
        LaunchContext(
            launch_hash=hash_secret(launch),
            client_id=client.client_id,
            hospital_id=hospital_id,
            patient_id=patient_id,
            user_id=user_id,
            created_at=now,
            expires_at=now + LAUNCH_TTL,
        )
    )
    db.session.commit()
    return launch


def pending_launch(launch: str, client_id: str, hospital_id: str) -> LaunchContext | None:
    """The launch an authorization request names, if it is this application's at this hospital,
    unused and unexpired."""
    if not launch.startswith(LAUNCH_PREFIX) or len(launch) > MAX_LAUNCH_LENGTH:
        return None
    context = db.session.get(LaunchContext, hash_secret(launch))
    if (
        context is None
        or context.client_id != client_id
        or context.hospital_id != hospital_id
        or context.used_at is not None
        or as_utc(context.expires_at) <= utcnow()
    ):
        return None
    return context


def spend_launch(context: LaunchContext) -> bool:
    """Use the launch up; False if another request did first. The caller commits."""
    return bool(
        db.session.execute(
            update(LaunchContext)
            .where(LaunchContext.launch_hash == context.launch_hash, LaunchContext.used_at.is_(None))
            .values(used_at=utcnow())
        ).rowcount
    )


def launchable_apps(hospital_id: str) -> list[OAuthClient]:
    """Applications clinicians may launch at a hospital: registered with a launch URL, active,
    and granted by the hospital (an EHR launches only the apps it approved)."""
    query = (
        select(OAuthClient)
        .join(AppGrant, AppGrant.client_id == OAuthClient.client_id)
        .where(
            AppGrant.hospital_id == hospital_id,
            OAuthClient.launch_uri.is_not(None),
            OAuthClient.revoked_at.is_(None),
        )
        .order_by(OAuthClient.name)
    )
    return list(db.session.scalars(query))
