"""Patient: the key/secret pairs a patient issues to their own health apps."""

from __future__ import annotations

from flask import jsonify

from app.api import bp
from app.api.body import json_body, list_field, text_field
from app.api.serialize import patient_credential
from app.errors import ApiError
from app.sessions import current_user, require_user
from oauth import (
    EXPIRY_CHOICES,
    PATIENT_CREDENTIAL,
    PATIENT_DEFAULT_SCOPE,
    ScopeError,
    SmartScope,
    active_clients,
    covers,
    create_patient_credential,
    find_active_client,
    normalize_scope_list,
    parse_scopes,
    revoke_client,
)


def _permissions(body: dict) -> str:
    """``permissions``: the patient/ scopes the key pair gets (default: all of the record)."""
    if "permissions" not in body:
        return PATIENT_DEFAULT_SCOPE
    try:
        permissions = normalize_scope_list(list_field(body, "permissions"), context="patient")
    except ScopeError as error:
        raise ApiError(400, f"permissions: {error}") from None
    readable = parse_scopes(PATIENT_DEFAULT_SCOPE)
    for permission in permissions:
        if not covers(readable, SmartScope.parse(permission)):
            raise ApiError(400, f"permissions: {permission!r}: a key pair reads and searches, nothing more.")
    return " ".join(permissions)


def _lifetime(body: dict) -> int | None:
    """``expires``: how long the key pair lasts, one of EXPIRY_CHOICES (default: never)."""
    choice = body.get("expires", "never")
    if choice not in EXPIRY_CHOICES:
        raise ApiError(400, f"'expires' must be one of {', '.join(EXPIRY_CHOICES)}.")
    return EXPIRY_CHOICES[choice]


@bp.post("/me/credentials")
@require_user("patient")
def create_credential():
    user = current_user()
    body = json_body(required={"name"}, optional={"permissions", "expires"})
    new = create_patient_credential(
        user.hospital_id,
        user.patient_id,
        text_field(body, "name"),
        user.id,
        scope=_permissions(body),
        lifetime=_lifetime(body),
    )
    response = jsonify({**patient_credential(new.client), "secret": new.secret})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/me/credentials")
@require_user("patient")
def list_credentials():
    user = current_user()
    return jsonify([patient_credential(c) for c in active_clients(PATIENT_CREDENTIAL, owner_user_id=user.id)])


@bp.delete("/me/credentials/<key>")
@require_user("patient")
def delete_credential(key: str):
    client = find_active_client(PATIENT_CREDENTIAL, key, owner_user_id=current_user().id)
    if client is None:
        raise ApiError.not_found("credential")
    revoke_client(client)
    return "", 204
