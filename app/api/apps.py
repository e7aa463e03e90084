"""Developer: applications (machine-to-machine OAuth clients) and where they may go."""

from __future__ import annotations

import json
import re

from flask import jsonify, request

from app.api import bp
from app.api.body import json_body, keys_field, list_field, text_field
from app.api.serialize import key_fields, timestamp
from app.errors import ApiError, api_error_response
from app.extensions import db
from app.integrations.switching import IntegrationError, rotate_secret_keeping_integrations
from app.models import HOSPITAL_ID, SANDBOX_HOSPITAL_ID, Hospital
from app.sessions import current_user, require_user
from oauth import (
    APPLICATION,
    AUTH_METHODS,
    KEY_AUTH_METHOD,
    MIN_GIVEN_SECRET_LENGTH,
    PUBLIC_CLIENT,
    RegistrationError,
    ScopeError,
    access_requests,
    active_clients,
    create_application,
    fhir_base_url,
    find_active_client,
    normalize_scope_list,
    reachable_hospitals,
    registration_metadata,
    request_access,
    revoke_client,
    set_application_keys,
    update_application_registration,
)

DEVELOPER_ROLES = ("developer", "superadmin")
SECRET_METHODS = ["client_secret_basic", "client_secret_post"]


def integration_error_response(error: IntegrationError):
    """A wrong client secret or passphrase is a 403 here: the developer is logged in (a 401
    would ask for that)."""
    status = 403 if error.status == 401 else error.status
    response = api_error_response(status, str(error), error.code)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def own_app(client_id: str):
    """The application, if the logged-in developer owns it (superadmins see all)."""
    user = current_user()
    client = find_active_client(APPLICATION, client_id)
    if client is None or (user.role != "superadmin" and client.owner_user_id != user.id):
        raise ApiError.not_found("application")
    return client


def _registration_json(client) -> dict:
    """The SMART App Launch registration, in RFC 7591's names."""
    methods = client.auth_methods.split()
    return {
        "client_name": client.name,
        "token_endpoint_auth_method": methods[0] if methods != SECRET_METHODS else "client_secret_basic",
        "redirect_uris": json.loads(client.redirect_uris) if client.redirect_uris else [],
        "launch_uri": client.launch_uri,
        "client_uri": client.client_uri,
        "publisher": client.publisher,
        "id_token_signed_response_alg": client.id_token_alg or "RS256",
        "access_token_signed_response_alg": client.access_token_alg or "ES256",
    }


def _app_json(client) -> dict:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "created": timestamp(client.created_at),
        "last_used": timestamp(client.last_used_at),
        **key_fields(client),
        **_registration_json(client),
    }


def _secret_response(new, status: int):
    body = {"client_id": new.client.client_id, "name": new.client.name}
    if new.secret is not None:
        body["client_secret"] = new.secret
    response = jsonify({**body, **key_fields(new.client), **_registration_json(new.client)})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


# RFC 3986's unreserved characters, those of a generated secret (base64url) and a few more: a
# secret of these reads the same whether or not a client form-encodes its Basic credentials
# (RFC 6749 §2.3.1 asks it to; several do not, and then "+", "%" or ":" break them).
_URL_SAFE_SECRET = re.compile(r"[A-Za-z0-9._~-]+")


def given_secret_problem(secret: object) -> str | None:
    """What is wrong with a client secret the developer chose, or None."""
    if not isinstance(secret, str) or not MIN_GIVEN_SECRET_LENGTH <= len(secret) <= 512:
        return f"needs {MIN_GIVEN_SECRET_LENGTH} to 512 characters."
    if not _URL_SAFE_SECRET.fullmatch(secret):
        return "may hold only letters, digits and - . _ ~ (characters every client sends unchanged)."
    return None


def hospital_reach(client) -> list[dict]:
    """The hospitals the application may reach, the sandbox (test data) first."""
    reach = reachable_hospitals(client)
    ordered = sorted(reach.items(), key=lambda item: (item[0] != SANDBOX_HOSPITAL_ID, item[0]))
    result = []
    for hospital_id, scope in ordered:
        hospital = db.session.get(Hospital, hospital_id)
        result.append(
            {
                "hospital": hospital_id,
                "name": hospital.name if hospital else hospital_id,
                "fhir_base_url": fhir_base_url(hospital_id),
                "permissions": scope.split(),
                "sandbox": hospital_id == SANDBOX_HOSPITAL_ID,
            }
        )
    return result


REGISTRATION_FIELDS = {
    "client_name",
    "redirect_uris",
    "launch_uri",
    "client_uri",
    "publisher",
    "id_token_signed_response_alg",
    "access_token_signed_response_alg",
}


def _name(body: dict) -> str | None:
    if "name" in body and "client_name" in body and body["name"] != body["client_name"]:
        raise ApiError(400, "Give 'name' or 'client_name' (RFC 7591), not two different names.")
    field = "client_name" if "client_name" in body else "name" if "name" in body else None
    return text_field(body, field) if field else None


def _registration(body: dict, *, public: bool):
    try:
        return registration_metadata(body, public=public)
    except RegistrationError as error:
        raise ApiError(400, str(error)) from None


@bp.post("/apps")
@require_user(*DEVELOPER_ROLES)
def create_app_route():
    """An application: a secret (given or generated), public keys, or none at all for a public
    client (``token_endpoint_auth_method: none``); with its SMART App Launch registration."""
    body = json_body(
        optional={
            "name",
            "client_secret",
            "jwks",
            "jwks_uri",
            "token_endpoint_auth_method",
            *REGISTRATION_FIELDS,
        }
    )
    name = _name(body)
    if name is None:
        raise ApiError(400, "Missing field(s): name (or client_name).")
    secret = body.get("client_secret")
    keys = keys_field(body)
    method = body.get("token_endpoint_auth_method")
    if method is not None and method not in AUTH_METHODS:
        raise ApiError(400, f"'token_endpoint_auth_method' is one of {', '.join(AUTH_METHODS)}.")
    if secret is not None and keys is not None:
        raise ApiError(400, "Give a client_secret or public keys (jwks or jwks_uri), not both.")
    public = method == PUBLIC_CLIENT
    if public and (secret is not None or keys is not None):
        raise ApiError(
            400, "A public client ('token_endpoint_auth_method': 'none') has no secret and no keys."
        )
    if method == KEY_AUTH_METHOD and keys is None:
        raise ApiError(400, "'private_key_jwt' needs the public keys: 'jwks' or 'jwks_uri'.")
    if method in SECRET_METHODS and keys is not None:
        raise ApiError(400, f"'{method}' authenticates with a secret: leave out 'jwks' and 'jwks_uri'.")
    if secret is not None and (problem := given_secret_problem(secret)):
        raise ApiError(400, f"'client_secret' {problem}")
    registration = _registration(body, public=public)
    new = create_application(name, current_user().id, secret, keys, public=public, registration=registration)
    return _secret_response(new, 201)


@bp.patch("/apps/<client_id>")
@require_user(*DEVELOPER_ROLES)
def update_app_registration(client_id: str):
    """Change the name or the SMART App Launch registration (the fields given)."""
    client = own_app(client_id)
    body = json_body(optional={"name", *REGISTRATION_FIELDS})
    public = client.auth_methods == PUBLIC_CLIENT and "redirect_uris" in body
    registration = _registration(body, public=public)
    update_application_registration(client, _name(body), registration)
    return jsonify(_app_json(client))


@bp.get("/apps")
@require_user(*DEVELOPER_ROLES)
def list_apps():
    user = current_user()
    filters = {} if user.role == "superadmin" else {"owner_user_id": user.id}
    return jsonify([_app_json(client) for client in active_clients(APPLICATION, **filters)])


@bp.get("/apps/<client_id>")
@require_user(*DEVELOPER_ROLES)
def get_app(client_id: str):
    return jsonify(_app_json(own_app(client_id)))


@bp.post("/apps/<client_id>/secret")
@require_user(*DEVELOPER_ROLES)
def rotate_secret(client_id: str):
    """A new secret. With ``{"client_secret": current}`` the application's EHR credentials are
    sealed again under the new one; without, they must be entered again."""
    client = own_app(client_id)
    current = json_body(optional={"client_secret"}).get("client_secret") if request.content_length else None
    try:
        new = rotate_secret_keeping_integrations(client, current, request.remote_addr)
    except IntegrationError as error:
        return integration_error_response(error)
    return _secret_response(new, 200)


@bp.put("/apps/<client_id>/keys")
@require_user(*DEVELOPER_ROLES)
def put_keys(client_id: str):
    """Authenticate with public keys (private_key_jwt) from now on, in place of a secret."""
    client = own_app(client_id)
    keys = keys_field(json_body(optional={"jwks", "jwks_uri"}))
    if keys is None:
        raise ApiError(400, "Give 'jwks' (a JWK Set) or 'jwks_uri'.")
    set_application_keys(client, keys)
    return jsonify(_app_json(client))


@bp.delete("/apps/<client_id>")
@require_user(*DEVELOPER_ROLES)
def delete_app(client_id: str):
    revoke_client(own_app(client_id))
    return "", 204


def access_request_json(request, client) -> dict:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "hospital": request.hospital_id,
        "permissions": request.scope.split(),
        "message": request.message,
        "created": timestamp(request.created_at),
    }


def access_request_problem(hospital_id: object) -> str | None:
    """Why this application cannot ask this hospital for access, or None."""
    if not isinstance(hospital_id, str) or not HOSPITAL_ID.fullmatch(hospital_id):
        return "'hospital' must be a hospital id."
    if hospital_id == SANDBOX_HOSPITAL_ID:
        return "Every application reaches the sandbox already."
    if db.session.get(Hospital, hospital_id) is None:
        return "There is no hospital with this id."
    return None


@bp.post("/apps/<client_id>/access-requests")
@require_user(*DEVELOPER_ROLES)
def post_access_request(client_id: str):
    """Ask a hospital for access; its admins see the request until they grant or decline it."""
    client = own_app(client_id)
    body = json_body(required={"hospital", "permissions"}, optional={"message"})
    if problem := access_request_problem(body["hospital"]):
        raise ApiError(404 if problem.startswith("There is no") else 400, problem)
    try:
        permissions = normalize_scope_list(list_field(body, "permissions"), context="system")
    except ScopeError as error:
        raise ApiError(400, f"permissions: {error}") from None
    message = text_field(body, "message", max_length=500) if body.get("message") is not None else None
    request = request_access(client, body["hospital"], permissions, message)
    response = jsonify(access_request_json(request, client))
    response.status_code = 201
    return response


@bp.get("/apps/<client_id>/access-requests")
@require_user(*DEVELOPER_ROLES)
def list_access_requests(client_id: str):
    client = own_app(client_id)
    return jsonify([access_request_json(r, c) for r, c in access_requests(client_id=client.client_id)])


@bp.get("/apps/<client_id>/hospitals")
@require_user(*DEVELOPER_ROLES)
def app_hospitals(client_id: str):
    """The hospitals the application may reach, the sandbox first."""
    return jsonify(hospital_reach(own_app(client_id)))
