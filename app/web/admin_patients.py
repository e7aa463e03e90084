"""The hospital admin portal's "Patient access": every patient key pair and every application a
patient approved here, each with Revoke, and each patient's portal login, with Disable/Enable."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from app.api.body import FHIR_ID
from app.patient_oversight import patient_access, set_portal_login
from app.web import bp
from app.web.admin import _hospital
from app.web.pages import WebError
from app.web.scope_words import access_in_words
from fhir.policy import patient_visible_types
from oauth import (
    PATIENT_CREDENTIAL,
    find_active_client,
    hospital_authorization,
    resource_scopes,
    revoke_authorization,
    revoke_client,
)


@bp.get("/admin/<hid>/patient-access")
def admin_patient_access(hid: str):
    user, hospital = _hospital(hid)
    access = patient_access(hospital.id)
    for approval in access["authorizations"]:
        approval["access"] = access_in_words(resource_scopes(approval["scope"]), patient_visible_types())
    return render_template(
        "web/admin/patients.html", user=user, hospital=hospital, notice=request.args.get("notice"), **access
    )


def _back(hospital_id: str, notice: str):
    return redirect(url_for("web.admin_patient_access", hid=hospital_id, notice=notice), code=303)


@bp.post("/admin/<hid>/patient-credentials/<key>/revoke")
def admin_revoke_patient_credential(hid: str, key: str):
    _, hospital = _hospital(hid)
    client = find_active_client(PATIENT_CREDENTIAL, key, hospital_id=hospital.id)
    if client is None:
        raise WebError(404, "This hospital has no such patient credential.")
    revoke_client(client)
    return _back(hospital.id, "credential-revoked")


@bp.post("/admin/<hid>/authorizations/<approval_id>/revoke")
def admin_revoke_authorization(hid: str, approval_id: str):
    _, hospital = _hospital(hid)
    approval = hospital_authorization(approval_id, hospital.id)
    if approval is None:
        raise WebError(404, "This hospital has no such connected app.")
    revoke_authorization(approval, "revoked by the hospital")
    return _back(hospital.id, "app-revoked")


@bp.post("/admin/<hid>/patients/<pid>/login")
def admin_portal_login(hid: str, pid: str):
    _, hospital = _hospital(hid)
    disabled = request.form.get("disabled") == "1"
    user = set_portal_login(hospital.id, pid, disabled) if FHIR_ID.match(pid) else None
    if user is None:
        raise WebError(404, "This patient has no portal login.")
    return _back(hospital.id, "login-disabled" if disabled else "login-enabled")
