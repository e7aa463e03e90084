"""Hospital admin: API keys, application grants, patient portal access."""

from __future__ import annotations

from flask import current_app, jsonify

from app.accounts import AccountError, create_user
from app.api import bp
from app.api.apps import access_request_json
from app.api.body import (
    FHIR_ID,
    bool_field,
    email_field,
    int_field,
    json_body,
    keys_field,
    list_field,
    password_field,
    text_field,
)
from app.api.serialize import credential, key_fields, timestamp
from app.errors import ApiError
from app.extensions import db
from app.models import HOSPITAL_ID, Hospital
from app.sessions import current_user, require_user
from fhir.storage.sql import SqlRepository, patient_exists
from oauth import (
    APPLICATION,
    HOSPITAL_KEY,
    AppGrant,
    ScopeError,
    access_requests,
    active_clients,
    create_hospital_key,
    decline_access_request,
    fhir_base_url,
    find_active_client,
    grant_application,
    normalize_scope_list,
    revoke_client,
    withdraw_application,
)

MIN_TOKEN_TTL = 60


def hospital_for_admin(hid: str) -> Hospital:
    """The hospital, if the logged-in user administers it (superadmins administer all)."""
    user = current_user()
    if user.role == "hospital-admin" and user.hospital_id != hid:
        raise ApiError(403, "You do not administer this hospital.")
    hospital = db.session.get(Hospital, hid) if HOSPITAL_ID.fullmatch(hid) else None
    if hospital is None:
        raise ApiError.not_found("hospital")
    return hospital


def _system_permissions(body: dict) -> list[str]:
    try:
        return normalize_scope_list(list_field(body, "permissions"), context="system")
    except ScopeError as error:
        raise ApiError(400, f"permissions: {error}") from None


@bp.post("/hospitals/<hid>/api-keys")
@require_user("hospital-admin", "superadmin")
def create_api_key(hid: str):
    hospital = hospital_for_admin(hid)
    body = json_body(
        required={"name", "permissions"}, optional={"token_ttl", "require_key_headers", "jwks", "jwks_uri"}
    )
    keys = keys_field(body)
    require_key_headers = bool_field(body, "require_key_headers", False)
    if keys is not None and require_key_headers:
        raise ApiError(400, "require_key_headers needs a secret; a key with public keys has none.")
    config = current_app.config
    new = create_hospital_key(
        hospital.id,
        text_field(body, "name"),
        _system_permissions(body),
        token_ttl=int_field(
            body,
            "token_ttl",
            config["FHIRGATE_API_KEY_TOKEN_TTL"],
            minimum=MIN_TOKEN_TTL,
            maximum=config["FHIRGATE_API_KEY_TOKEN_TTL_MAX"],
        ),
        require_key_headers=require_key_headers,
        owner_user_id=current_user().id,
        keys=keys,
    )
    secret = {"secret": new.secret} if new.secret is not None else {}
    response = jsonify(
        key=new.client.client_id,
        **secret,
        token=new.token.access_token,
        token_type="Bearer",
        expires_in=new.token.expires_in,
        permissions=new.client.scope.split(),
        name=new.client.name,
        require_key_headers=new.client.require_key_headers,
        fhir_base_url=fhir_base_url(hospital.id),
        **key_fields(new.client),
    )
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/hospitals/<hid>/api-keys")
@require_user("hospital-admin", "superadmin")
def list_api_keys(hid: str):
    hospital = hospital_for_admin(hid)
    keys = active_clients(HOSPITAL_KEY, hospital_id=hospital.id)
    return jsonify(
        [
            credential(
                key,
                permissions=key.scope.split(),
                token_ttl=key.token_ttl,
                require_key_headers=key.require_key_headers,
                **key_fields(key),
            )
            for key in keys
        ]
    )


@bp.delete("/hospitals/<hid>/api-keys/<key>")
@require_user("hospital-admin", "superadmin")
def delete_api_key(hid: str, key: str):
    hospital = hospital_for_admin(hid)
    client = find_active_client(HOSPITAL_KEY, key, hospital_id=hospital.id)
    if client is None:
        raise ApiError.not_found("API key")
    revoke_client(client)
    return "", 204


def _grant_json(grant: AppGrant, client) -> dict:
    return {
        "client_id": grant.client_id,
        "name": client.name,
        "hospital": grant.hospital_id,
        "permissions": grant.scope.split(),
        "created": timestamp(grant.created_at),
        "updated": timestamp(grant.updated_at),
    }


@bp.get("/hospitals/<hid>/apps")
@require_user("hospital-admin", "superadmin")
def list_app_grants(hid: str):
    hospital = hospital_for_admin(hid)
    grants = db.session.query(AppGrant).filter_by(hospital_id=hospital.id).order_by(AppGrant.created_at)
    result = []
    for grant in grants:
        client = find_active_client(APPLICATION, grant.client_id)
        if client is not None:
            result.append(_grant_json(grant, client))
    return jsonify(result)


@bp.get("/hospitals/<hid>/access-requests")
@require_user("hospital-admin", "superadmin")
def list_hospital_access_requests(hid: str):
    """Applications asking this hospital for access, oldest first; PUT …/apps/{id} grants."""
    hospital = hospital_for_admin(hid)
    return jsonify([access_request_json(r, c) for r, c in access_requests(hospital_id=hospital.id)])


@bp.delete("/hospitals/<hid>/access-requests/<client_id>")
@require_user("hospital-admin", "superadmin")
def decline_request(hid: str, client_id: str):
    hospital = hospital_for_admin(hid)
    if not decline_access_request(client_id, hospital.id):
        raise ApiError.not_found("access request")
    return "", 204


@bp.put("/hospitals/<hid>/apps/<client_id>")
@require_user("hospital-admin", "superadmin")
def put_app_grant(hid: str, client_id: str):
    hospital = hospital_for_admin(hid)
    body = json_body(required={"permissions"})
    permissions = _system_permissions(body)
    client = find_active_client(APPLICATION, client_id)
    if client is None:
        raise ApiError.not_found("application")
    existed = db.session.get(AppGrant, (client.client_id, hospital.id)) is not None
    grant = grant_application(client, hospital.id, permissions)
    response = jsonify(_grant_json(grant, client))
    response.status_code = 200 if existed else 201
    return response


@bp.delete("/hospitals/<hid>/apps/<client_id>")
@require_user("hospital-admin", "superadmin")
def delete_app_grant(hid: str, client_id: str):
    hospital = hospital_for_admin(hid)
    client = find_active_client(APPLICATION, client_id)
    if client is None or not withdraw_application(client, hospital.id):
        raise ApiError.not_found("grant")
    return "", 204


@bp.post("/hospitals/<hid>/patients/<pid>/portal-access")
@require_user("hospital-admin", "superadmin")
def enable_portal_access(hid: str, pid: str):
    """Create the patient's portal login for a Patient of this hospital's FHIR store."""
    hospital = hospital_for_admin(hid)
    if not FHIR_ID.match(pid):
        raise ApiError(400, "The Patient id is not a valid FHIR id.")
    if not patient_exists(hospital.id, pid):
        raise ApiError(404, f"This hospital has no Patient/{pid}.")
    body = json_body(required={"email", "password"})
    email = email_field(body)
    password = password_field(body)
    try:
        user = create_user(email, password, "patient", hospital_id=hospital.id, patient_id=pid)
    except AccountError as error:
        raise ApiError(409 if error.conflict else 400, str(error)) from None
    response = jsonify(email=user.email, hospital=hospital.id, patient=pid)
    response.status_code = 201
    return response


@bp.post("/hospitals/<hid>/clinicians")
@require_user("hospital-admin", "superadmin")
def create_clinician(hid: str):
    """A clinician of this hospital: logs in to the EHR page and launches apps for its patients;
    ``practitioner`` (optional) names their Practitioner in the hospital's store, their fhirUser."""
    hospital = hospital_for_admin(hid)
    body = json_body(required={"email", "password"}, optional={"practitioner"})
    practitioner = body.get("practitioner")
    if practitioner is not None and not (isinstance(practitioner, str) and FHIR_ID.match(practitioner)):
        raise ApiError(400, "'practitioner' must be a FHIR id.")
    if practitioner is not None and not SqlRepository(db.session, hospital.id).exists(
        "Practitioner", practitioner
    ):
        raise ApiError(404, f"This hospital has no Practitioner/{practitioner}.")
    try:
        user = create_user(
            email_field(body),
            password_field(body),
            "clinician",
            hospital_id=hospital.id,
            practitioner_id=practitioner,
        )
    except AccountError as error:
        raise ApiError(409 if error.conflict else 400, str(error)) from None
    response = jsonify(
        email=user.email, hospital=hospital.id, role=user.role, practitioner=user.practitioner_id
    )
    response.status_code = 201
    return response
