"""EHR integrations: the operator connects hospitals to upstream FHIR servers (superadmin);
developers switch their applications' integrations on with their own EHR credentials."""

from __future__ import annotations

from flask import jsonify, request

from app.api import bp
from app.api.apps import DEVELOPER_ROLES, integration_error_response, own_app
from app.api.body import bool_field, json_body, list_field
from app.api.hospitals import hospital_for_admin
from app.api.serialize import timestamp
from app.errors import ApiError
from app.integrations.models import HospitalUpstream
from app.integrations.switching import (
    Integration,
    IntegrationError,
    credentials_needed,
    hospitals_with_upstreams,
    integration_of,
    integrations_of,
    set_passphrase,
    switch_off,
    switch_on,
)
from app.integrations.upstreams import (
    DEFAULT_SCOPE,
    UpstreamError,
    UpstreamSettings,
    connect_hospital,
    disconnect_hospital,
    upstream_of,
)
from app.models import SANDBOX_HOSPITAL_ID
from app.sessions import require_user
from oauth import fhir_base_url

UPSTREAM_FIELDS = {"token_url", "api_key_header", "scope", "test_credentials"}


def upstream_json(upstream: HospitalUpstream) -> dict:
    """What the operator registered; the test credentials only as whether there are any."""
    return {
        "hospital": upstream.hospital_id,
        "base_url": upstream.base_url,
        "auth_kind": upstream.auth_kind,
        "token_url": upstream.token_url,
        "api_key_header": upstream.api_key_header,
        "scope": upstream.scope.split(),
        "test_credentials": upstream.test_credentials is not None,
        "created": timestamp(upstream.created_at),
        "updated": timestamp(upstream.updated_at),
    }


def integration_json(item: Integration) -> dict:
    upstream = item.upstream
    assert upstream is not None
    credential = item.credential
    return {
        "hospital": item.hospital.id,
        "name": item.hospital.name,
        "fhir_base_url": fhir_base_url(item.hospital.id),
        "auth_kind": upstream.auth_kind,
        "credentials_needed": credentials_needed(upstream),
        "test_credentials_available": upstream.test_credentials is not None,
        "status": item.status,
        "mode": credential.mode if credential is not None else None,
        "permissions": item.permissions,
        "updated": timestamp(credential.updated_at) if credential is not None else None,
    }


@bp.get("/integrations")
@require_user(*DEVELOPER_ROLES)
def list_integrations():
    """Every hospital an application could use: connected ones (an upstream EHR) with what
    they need, local ones reached through access requests as before."""
    result = []
    for hospital, upstream in hospitals_with_upstreams():
        entry = {
            "hospital": hospital.id,
            "name": hospital.name,
            "fhir_base_url": fhir_base_url(hospital.id),
            "connected": upstream is not None,
            "sandbox": hospital.id == SANDBOX_HOSPITAL_ID,
            "auth_kind": upstream.auth_kind if upstream else None,
            "credentials_needed": credentials_needed(upstream) if upstream else None,
            "test_credentials_available": bool(upstream and upstream.test_credentials is not None),
            "permissions_available": upstream.scope.split() if upstream else None,
        }
        result.append(entry)
    return jsonify(result)


@bp.get("/apps/<client_id>/integrations")
@require_user(*DEVELOPER_ROLES)
def app_integrations(client_id: str):
    """The application's integration with each connected hospital: on, off or needing its
    credentials entered again (sealed under a secret since rotated)."""
    return jsonify([integration_json(item) for item in integrations_of(own_app(client_id))])


def _connected(client, hospital_id: str) -> Integration:
    item = integration_of(client, hospital_id)
    if item is None:
        raise ApiError(404, "No connected hospital with this id (a local hospital takes an access request).")
    return item


@bp.get("/apps/<client_id>/integrations/<hid>")
@require_user(*DEVELOPER_ROLES)
def get_app_integration(client_id: str, hid: str):
    return jsonify(integration_json(_connected(own_app(client_id), hid)))


@bp.put("/apps/<client_id>/integrations/<hid>")
@require_user(*DEVELOPER_ROLES)
def put_app_integration(client_id: str, hid: str):
    """Switch on (or re-enter): ``credentials`` and ``client_secret``, or
    ``use_test_credentials``; ``permissions`` within the hospital's (all of them if left out)."""
    client = own_app(client_id)
    item = _connected(client, hid)
    body = json_body(
        optional={
            "credentials",
            "client_secret",
            "integration_passphrase",
            "use_test_credentials",
            "permissions",
        }
    )
    permissions = list_field(body, "permissions") if "permissions" in body else None
    assert item.upstream is not None
    try:
        switched = switch_on(
            client,
            item.upstream,
            address=request.remote_addr,
            credentials=body.get("credentials"),
            client_secret=body.get("client_secret"),
            integration_passphrase=body.get("integration_passphrase"),
            use_test_credentials=bool_field(body, "use_test_credentials", False),
            permissions=permissions,
        )
    except IntegrationError as error:
        return integration_error_response(error)
    response = jsonify(integration_json(switched))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.put("/apps/<client_id>/integration-passphrase")
@require_user(*DEVELOPER_ROLES)
def put_integration_passphrase(client_id: str):
    """An application with public keys (no secret) locks its EHR credentials with this
    passphrase; ``current_passphrase`` seals those already switched on again under the new one."""
    client = own_app(client_id)
    body = json_body(required={"passphrase"}, optional={"current_passphrase"})
    try:
        set_passphrase(client, body["passphrase"], body.get("current_passphrase"), request.remote_addr)
    except IntegrationError as error:
        return integration_error_response(error)
    return "", 204


@bp.delete("/apps/<client_id>/integrations/<hid>")
@require_user(*DEVELOPER_ROLES)
def delete_app_integration(client_id: str, hid: str):
    """Switch off: the credentials are deleted, and the grant they came with."""
    client = own_app(client_id)
    _connected(client, hid)
    if not switch_off(client, hid):
        raise ApiError(404, "This integration is not switched on.")
    return "", 204


@bp.get("/hospitals/<hid>/upstream")
@require_user("superadmin")
def get_upstream(hid: str):
    upstream = upstream_of(hospital_for_admin(hid).id)
    if upstream is None:
        raise ApiError(404, "This hospital is not connected to an upstream server (it uses the local store).")
    return jsonify(upstream_json(upstream))


@bp.put("/hospitals/<hid>/upstream")
@require_user("superadmin")
def put_upstream(hid: str):
    """Connect the hospital to an upstream FHIR server, or change how it is connected."""
    hospital = hospital_for_admin(hid)
    body = json_body(required={"base_url", "auth_kind"}, optional=UPSTREAM_FIELDS)
    scope = body.get("scope", DEFAULT_SCOPE.split())
    if not isinstance(scope, list) or not all(isinstance(item, str) for item in scope):
        raise ApiError(400, "'scope' is a list of system/ scopes.")
    for name in ("base_url", "auth_kind", "token_url", "api_key_header"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise ApiError(400, f"'{name}' must be a string.")
    settings = UpstreamSettings(
        base_url=body["base_url"],
        auth_kind=body["auth_kind"],
        token_url=body.get("token_url"),
        api_key_header=body.get("api_key_header"),
        scope=" ".join(scope),
        test_credentials=body.get("test_credentials"),
    )
    try:
        upstream = connect_hospital(hospital, settings)
    except UpstreamError as error:
        raise ApiError(400, str(error)) from None
    return jsonify(upstream_json(upstream))


@bp.delete("/hospitals/<hid>/upstream")
@require_user("superadmin")
def delete_upstream(hid: str):
    """Disconnect: the hospital's FHIR API is its local store again."""
    if not disconnect_hospital(hospital_for_admin(hid)):
        raise ApiError(404, "This hospital is not connected to an upstream server.")
    return "", 204
