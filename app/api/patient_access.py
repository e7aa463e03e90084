"""A hospital's oversight of patient access: every patient key pair and every application a
patient approved at the hospital, each revocable by its admins, and patients' portal logins,
which an admin can disable (and enable again)."""

from __future__ import annotations

from flask import jsonify

from app.api import bp
from app.api.body import FHIR_ID, bool_field, json_body
from app.api.hospitals import hospital_for_admin
from app.errors import ApiError
from app.patient_oversight import patient_access, set_portal_login
from app.sessions import require_user
from oauth import (
    PATIENT_CREDENTIAL,
    find_active_client,
    hospital_authorization,
    revoke_authorization,
    revoke_client,
)

ADMINS = ("hospital-admin", "superadmin")


@bp.get("/hospitals/<hid>/patient-access")
@require_user(*ADMINS)
def list_patient_access(hid: str):
    return jsonify(patient_access(hospital_for_admin(hid).id))


@bp.delete("/hospitals/<hid>/patient-credentials/<key>")
@require_user(*ADMINS)
def revoke_patient_credential(hid: str, key: str):
    hospital = hospital_for_admin(hid)
    client = find_active_client(PATIENT_CREDENTIAL, key, hospital_id=hospital.id)
    if client is None:
        raise ApiError.not_found("patient credential")
    revoke_client(client)
    return "", 204


@bp.delete("/hospitals/<hid>/authorizations/<approval_id>")
@require_user(*ADMINS)
def revoke_patient_authorization(hid: str, approval_id: str):
    hospital = hospital_for_admin(hid)
    approval = hospital_authorization(approval_id, hospital.id)
    if approval is None:
        raise ApiError.not_found("authorization")
    revoke_authorization(approval, "revoked by the hospital")
    return "", 204


@bp.patch("/hospitals/<hid>/patients/<pid>/portal-access")
@require_user(*ADMINS)
def update_portal_access(hid: str, pid: str):
    hospital = hospital_for_admin(hid)
    body = json_body(required={"disabled"})
    user = (
        set_portal_login(hospital.id, pid, bool_field(body, "disabled", False))
        if FHIR_ID.match(pid)
        else None
    )
    if user is None:
        raise ApiError.not_found("portal login")
    return jsonify(email=user.email, hospital=hospital.id, patient=pid, disabled=user.disabled_at is not None)
