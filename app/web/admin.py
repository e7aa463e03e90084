"""The hospital admin portal: API keys (permissions as a grid), portal patients, the audit trail."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for

from app.accounts import AccountError, create_user
from app.api.apps import access_request_json
from app.api.audit import OUTCOMES, event_summary
from app.api.body import FHIR_ID, email_field
from app.api.serialize import credential
from app.errors import ApiError
from app.extensions import db
from app.models import HOSPITAL_ID, Hospital
from app.web import bp
from app.web.auth import signed_in
from app.web.grid import grid, permissions_from_grid
from app.web.once import first_use, new_form_id, submitted_form_id
from app.web.pages import WebError
from fhir.audit_listing import AuditFilters, newest_events
from fhir.storage.sql import patient_exists
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
    keyring,
    normalize_scope_list,
    revoke_client,
    token_endpoint_url,
    withdraw_application,
)

AUDIT_ROWS = 50


def _hospital(hid: str) -> tuple[object, Hospital]:
    user = signed_in("hospital-admin", "superadmin")
    if user.role == "hospital-admin" and user.hospital_id != hid:
        raise WebError(403, "You do not administer this hospital.")
    hospital = db.session.get(Hospital, hid) if HOSPITAL_ID.fullmatch(hid) else None
    if hospital is None:
        raise WebError(404, "There is no such hospital.")
    return user, hospital


@bp.get("/admin/<hid>")
def admin_home(hid: str):
    user, hospital = _hospital(hid)
    keys = [
        credential(k, permissions=k.scope.split(), require_key_headers=k.require_key_headers)
        for k in active_clients(HOSPITAL_KEY, hospital_id=hospital.id)
    ]
    events, filters = _audit_events(hospital.id)
    return render_template(
        "web/admin/home.html",
        user=user,
        hospital=hospital,
        keys=keys,
        grants=_grants(hospital.id),
        requests=[access_request_json(r, c) for r, c in access_requests(hospital_id=hospital.id)],
        **grid(),
        events=events,
        filters=filters,
        notice=request.args.get("notice"),
        fhir_base=fhir_base_url(hospital.id),
    )


def _audit_events(hospital_id: str) -> tuple[list[dict], dict]:
    """The newest events, as the audit API lists them (``fhir.audit_listing``)."""
    filters = {"client": request.args.get("client", "")[:64], "outcome": request.args.get("outcome", "")}
    outcome = filters["outcome"] if filters["outcome"] in OUTCOMES else None
    wanted = AuditFilters(
        client=filters["client"] or None, failed=None if outcome is None else outcome == "failure"
    )
    events = newest_events(db.session, hospital_id, wanted, AUDIT_ROWS)
    return [event_summary(event) for event in events], filters


@bp.get("/admin/<hid>/api-keys/new")
def new_api_key(hid: str):
    user, hospital = _hospital(hid)
    return _key_form(user, hospital, new_form_id(), error=None)


def _key_form(user, hospital, form_id: str, error: str | None, status: int = 200):
    config = current_app.config
    page = render_template(
        "web/admin/new_key.html",
        user=user,
        hospital=hospital,
        form_id=form_id,
        error=error,
        **grid(request.form),
        ttl=request.form.get("token_ttl") or config["FHIRGATE_API_KEY_TOKEN_TTL"],
        ttl_max=config["FHIRGATE_API_KEY_TOKEN_TTL_MAX"],
    )
    return page, status


@bp.post("/admin/<hid>/api-keys")
def create_api_key(hid: str):
    user, hospital = _hospital(hid)
    form_id = submitted_form_id()
    name = " ".join(request.form.get("name", "").split())
    try:
        ttl = int(request.form.get("token_ttl", ""))
    except ValueError:
        ttl = 0
    ttl_max = current_app.config["FHIRGATE_API_KEY_TOKEN_TTL_MAX"]
    try:
        permissions = normalize_scope_list(permissions_from_grid(request.form), context="system")
    except ScopeError as error:
        return _key_form(user, hospital, form_id, f"Permissions: {error}", 400)
    if not name or len(name) > 100:
        return _key_form(user, hospital, form_id, "Enter a name of 1 to 100 characters.", 400)
    if not permissions:
        return _key_form(user, hospital, form_id, "Tick at least one permission.", 400)
    if not 60 <= ttl <= ttl_max:
        return _key_form(user, hospital, form_id, f"Token lifetime: 60 to {ttl_max} seconds.", 400)
    keyring().signing_key()  # make the first key now: later a pending row would block it on SQLite
    if not first_use(user, form_id):
        return render_template("web/admin/already_created.html", user=user, hospital=hospital), 409
    new = create_hospital_key(
        hospital.id,
        name,
        permissions,
        token_ttl=ttl,
        require_key_headers=request.form.get("require_key_headers") == "on",
        owner_user_id=user.id,
    )
    return render_template(
        "web/admin/key_created.html",
        user=user,
        hospital=hospital,
        name=name,
        key=new.client.client_id,
        secret=new.secret,
        token=new.token.access_token,
        expires_in=new.token.expires_in,
        permissions=permissions,
        require_key_headers=new.client.require_key_headers,
        fhir_base=fhir_base_url(hospital.id),
        token_url=token_endpoint_url(),
    )


def _key(hospital, key: str):
    client = find_active_client(HOSPITAL_KEY, key, hospital_id=hospital.id)
    if client is None:
        raise WebError(404, "This hospital has no such API key.")
    return client


@bp.get("/admin/<hid>/api-keys/<key>/revoke")
def confirm_revoke(hid: str, key: str):
    user, hospital = _hospital(hid)
    return render_template(
        "web/admin/revoke.html", user=user, hospital=hospital, key=credential(_key(hospital, key))
    )


@bp.post("/admin/<hid>/api-keys/<key>/revoke")
def revoke_api_key(hid: str, key: str):
    _, hospital = _hospital(hid)
    revoke_client(_key(hospital, key))
    return redirect(url_for("web.admin_home", hid=hospital.id, notice="revoked"), code=303)


@bp.post("/admin/<hid>/patients")
def enable_patient(hid: str):
    """A portal login for a Patient of this hospital (the admin gives the patient the password)."""
    user, hospital = _hospital(hid)
    patient_id = request.form.get("patient_id", "").strip()
    password = request.form.get("password", "")
    try:
        email = email_field({"email": request.form.get("email", "").strip()})
    except ApiError as error:
        raise WebError(400, error.message) from None
    if not FHIR_ID.match(patient_id) or not patient_exists(hospital.id, patient_id):
        raise WebError(404, f"This hospital has no Patient/{patient_id[:64]}.")
    try:
        create_user(email, password, "patient", hospital_id=hospital.id, patient_id=patient_id)
    except AccountError as error:
        raise WebError(409 if error.conflict else 400, str(error)) from None
    return redirect(url_for("web.admin_home", hid=hospital.id, notice="patient"), code=303)


def _grants(hospital_id: str) -> list[dict]:
    grants = db.session.query(AppGrant).filter_by(hospital_id=hospital_id).order_by(AppGrant.created_at)
    found = []
    for grant in grants:
        client = find_active_client(APPLICATION, grant.client_id)
        if client is not None:
            found.append(
                {"client_id": client.client_id, "name": client.name, "permissions": grant.scope.split()}
            )
    return found


@bp.post("/admin/<hid>/apps")
def grant_app(hid: str):
    """Give an application (by its client id) access to this hospital, with grid permissions."""
    _, hospital = _hospital(hid)
    client = find_active_client(APPLICATION, request.form.get("client_id", "").strip())
    if client is None:
        raise WebError(404, "There is no application with this client id.")
    try:
        permissions = normalize_scope_list(permissions_from_grid(request.form), context="system")
    except ScopeError as error:
        raise WebError(400, f"Permissions: {error}") from None
    if not permissions:
        raise WebError(400, "Tick at least one permission for the application.")
    grant_application(client, hospital.id, permissions)
    return redirect(url_for("web.admin_home", hid=hospital.id, notice="granted"), code=303)


@bp.post("/admin/<hid>/requests/<client_id>/grant")
def grant_request(hid: str, client_id: str):
    """Grant exactly what the application asked for."""
    _, hospital = _hospital(hid)
    waiting = access_requests(hospital_id=hospital.id, client_id=client_id)
    if not waiting:
        raise WebError(404, "This application has no request waiting.")
    asked, client = waiting[0]
    if request.form.get("scope") != asked.scope:
        # The developer changed the request after this page was shown: grant nothing unseen.
        raise WebError(409, "The application changed its request meanwhile; look at it again.")
    grant_application(client, hospital.id, asked.scope.split())
    return redirect(url_for("web.admin_home", hid=hospital.id, notice="granted"), code=303)


@bp.post("/admin/<hid>/requests/<client_id>/decline")
def decline_request(hid: str, client_id: str):
    _, hospital = _hospital(hid)
    if not decline_access_request(client_id, hospital.id):
        raise WebError(404, "This application has no request waiting.")
    return redirect(url_for("web.admin_home", hid=hospital.id, notice="declined"), code=303)


@bp.post("/admin/<hid>/apps/<client_id>/withdraw")
def withdraw_app(hid: str, client_id: str):
    _, hospital = _hospital(hid)
    client = find_active_client(APPLICATION, client_id)
    if client is None or not withdraw_application(client, hospital.id):
        raise WebError(404, "This application has no access to withdraw.")
    return redirect(url_for("web.admin_home", hid=hospital.id, notice="withdrawn"), code=303)
