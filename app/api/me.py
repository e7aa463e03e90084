"""Patient: the key/secret pairs a patient issues to their own health apps."""

from __future__ import annotations

from flask import jsonify

from app.api import bp
from app.api.body import json_body, text_field
from app.api.serialize import credential
from app.errors import ApiError
from app.sessions import current_user, require_user
from oauth import (
    PATIENT_CREDENTIAL,
    active_clients,
    create_patient_credential,
    find_active_client,
    revoke_client,
)


@bp.post("/me/credentials")
@require_user("patient")
def create_credential():
    user = current_user()
    body = json_body(required={"name"})
    new = create_patient_credential(user.hospital_id, user.patient_id, text_field(body, "name"), user.id)
    response = jsonify(
        key=new.client.client_id,
        secret=new.secret,
        name=new.client.name,
        created=credential(new.client)["created"],
    )
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/me/credentials")
@require_user("patient")
def list_credentials():
    user = current_user()
    return jsonify([credential(c) for c in active_clients(PATIENT_CREDENTIAL, owner_user_id=user.id)])


@bp.delete("/me/credentials/<key>")
@require_user("patient")
def delete_credential(key: str):
    client = find_active_client(PATIENT_CREDENTIAL, key, owner_user_id=current_user().id)
    if client is None:
        raise ApiError.not_found("credential")
    revoke_client(client)
    return "", 204
