"""The patient portal: "My History" and the FHIR API credentials a patient gives to apps."""

from __future__ import annotations

import orjson
from flask import redirect, render_template, request, url_for

from app.api.audit import event_summary
from app.api.serialize import credential, patient_credential
from app.extensions import db
from app.web import bp
from app.web.auth import signed_in
from app.web.authorize import EXPIRY_LABELS
from app.web.connected_apps import connections
from app.web.once import first_use, new_form_id, submitted_form_id
from app.web.pages import WebError
from app.web.scope_words import scope_in_words
from fhir.errors import FhirError
from fhir.policy import patient_visible_types
from fhir.storage.sql import SqlRepository
from oauth import (
    EXPIRY_CHOICES,
    PATIENT_CREDENTIAL,
    PATIENT_DEFAULT_SCOPE,
    active_clients,
    create_patient_credential,
    find_active_client,
    granted_scope,
    patient_offer,
    revoke_client,
    token_endpoint_url,
)

NAME_MAX = 100
WHOLE_RECORD = PATIENT_DEFAULT_SCOPE  # offered kind by kind, all ticked: the default stays all data
HISTORY_MAX = 50


def _patient():
    return signed_in("patient")


def _owned_credential(user, key: str):
    client = find_active_client(PATIENT_CREDENTIAL, key, owner_user_id=user.id)
    if client is None:
        raise WebError(404, "You have no such credential.")
    return client


def _patient_name(user) -> str | None:
    try:
        stored = SqlRepository(db.session, user.hospital_id).read("Patient", user.patient_id)
    except FhirError:
        return None
    names = orjson.loads(stored.content).get("name") or [{}]
    name = names[0] if isinstance(names[0], dict) else {}
    parts = [*(name.get("given") or []), name.get("family") or ""]
    return name.get("text") or " ".join(p for p in parts if isinstance(p, str) and p) or None


@bp.get("/portal")
def portal():
    user = _patient()
    credentials = [patient_credential(c) for c in active_clients(PATIENT_CREDENTIAL, owner_user_id=user.id)]
    return render_template(
        "web/portal/history.html",
        user=user,
        patient_name=_patient_name(user),
        credentials=credentials,
        connections=[c for c in connections(user) if c["status"] == "active"],
        notice=request.args.get("notice"),
    )


def _new_form(user, form_id: str, error: str | None = None):
    offer = patient_offer(WHOLE_RECORD, patient_visible_types())
    return render_template(
        "web/portal/new.html",
        user=user,
        form_id=form_id,
        error=error,
        kinds=[(scope, scope_in_words(scope, rest=scope in offer.expanded)) for scope in offer.choices],
        ticked=set(request.form.getlist("grant")) if request.method == "POST" else set(offer.choices),
        expiries=EXPIRY_LABELS,
        expiry=request.form.get("expiry", "never"),
    )


@bp.get("/portal/credentials/new")
def new_credentials():
    user = _patient()
    return _new_form(user, new_form_id())


@bp.post("/portal/credentials")
def create_credentials():
    """Create once per form: a reload or the back button re-sends the form, and gets no secret."""
    user = _patient()
    form_id = submitted_form_id()
    name = " ".join(request.form.get("name", "").split())
    if not name or len(name) > NAME_MAX:
        return _new_form(user, form_id, f"Enter a name of 1 to {NAME_MAX} characters."), 400
    types = patient_visible_types()
    scope = WHOLE_RECORD
    if "kinds_offered" in request.form:  # the form with the choices (a bare name: all data)
        scope = granted_scope(patient_offer(WHOLE_RECORD, types), request.form.getlist("grant"), types)
    if not scope:
        return _new_form(user, form_id, "Tick at least one kind of data."), 400
    expiry = request.form.get("expiry", "never")
    if expiry not in EXPIRY_CHOICES:
        return _new_form(user, form_id, "Choose how long the credentials last."), 400
    if not first_use(user, form_id):
        return render_template("web/portal/already_created.html", user=user), 409
    new = create_patient_credential(
        user.hospital_id, user.patient_id, name, user.id, scope=scope, lifetime=EXPIRY_CHOICES[expiry]
    )
    return render_template(
        "web/portal/created.html",
        user=user,
        key=new.client.client_id,
        secret=new.secret,
        name=name,
        token_url=token_endpoint_url(),
    )


@bp.get("/portal/credentials/<key>")
def credential_history(key: str):
    """Which resources the app holding this credential read, when, and from which address."""
    user = _patient()
    client = _owned_credential(user, key)
    args = [("altid", client.client_id), ("_sort", "-date"), ("_count", str(HISTORY_MAX))]
    bundle = orjson.loads(SqlRepository(db.session, user.hospital_id).search("AuditEvent", args))
    events = [event_summary(entry["resource"]) for entry in bundle.get("entry", [])]
    return render_template(
        "web/portal/credential.html", user=user, credential=credential(client), events=events
    )


@bp.get("/portal/credentials/<key>/delete")
def confirm_delete(key: str):
    user = _patient()
    return render_template(
        "web/portal/delete.html", user=user, credential=credential(_owned_credential(user, key))
    )


@bp.post("/portal/credentials/<key>/delete")
def delete_credentials(key: str):
    user = _patient()
    revoke_client(_owned_credential(user, key))  # its tokens fail at the FHIR API from the next request
    return redirect(url_for("web.portal", notice="deleted"), code=303)
