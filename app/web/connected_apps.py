"""The patient portal's "Connected apps": every application the patient approved, what it may
see, since and until when, when it last got a token, what it read, and Revoke — which ends its
access and refresh tokens at once, on every worker (``oauth.revoke_authorization``)."""

from __future__ import annotations

import orjson
from flask import redirect, render_template, url_for

from app.api.audit import event_summary
from app.api.serialize import approval_json, timestamp
from app.extensions import db
from app.web import bp
from app.web.auth import signed_in
from app.web.pages import WebError
from app.web.scope_words import access_in_words
from fhir.policy import patient_visible_types
from fhir.storage.sql import SqlRepository
from oauth import OAuthClient, authorizations_of, owned_authorization, resource_scopes, revoke_authorization

HISTORY_MAX = 50


def connection(approval) -> dict:
    """What the patient reads about one approval."""
    shown = approval_json(approval, db.session.get(OAuthClient, approval.client_id))
    shown["access"] = access_in_words(resource_scopes(approval.scope), patient_visible_types())
    return shown


def connections(user) -> list[dict]:
    return [connection(approval) for approval in authorizations_of(user.id)]


@bp.get("/portal/apps")
def connected_apps():
    user = signed_in("patient")
    return render_template("web/portal/apps.html", user=user, connections=connections(user))


def _owned(user, approval_id: str):
    approval = owned_authorization(approval_id, user.id)
    if approval is None:
        raise WebError(404, "You have no such connected app.")
    return approval


@bp.get("/portal/apps/<approval_id>")
def connected_app(approval_id: str):
    """The approval and the application's requests under it, from the audit trail."""
    user = signed_in("patient")
    approval = _owned(user, approval_id)
    args = [
        ("altid", approval.client_id),
        ("patient", f"Patient/{approval.patient_id}"),
        ("date", "ge" + timestamp(approval.created_at)[:19]),
        ("_sort", "-date"),
        ("_count", str(HISTORY_MAX)),
    ]
    bundle = orjson.loads(SqlRepository(db.session, approval.hospital_id).search("AuditEvent", args))
    events = [event_summary(entry["resource"]) for entry in bundle.get("entry", [])]
    return render_template("web/portal/app.html", user=user, c=connection(approval), events=events)


@bp.post("/portal/apps/<approval_id>/revoke")
def revoke_connected_app(approval_id: str):
    user = signed_in("patient")
    revoke_authorization(_owned(user, approval_id), "revoked by the patient")
    return redirect(url_for("web.connected_apps", notice="revoked"), code=303)
