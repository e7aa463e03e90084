"""The developer portal: applications, their one-time secrets, and the hospitals they reach."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from app.api.apps import access_request_json, access_request_problem, given_secret_problem, hospital_reach
from app.api.body import storable
from app.api.serialize import credential, key_fields
from app.web import bp
from app.web.auth import signed_in
from app.web.grid import grid, permissions_from_grid
from app.web.once import first_use, new_form_id, submitted_form_id
from app.web.pages import WebError
from oauth import (
    APPLICATION,
    JwksError,
    ScopeError,
    access_requests,
    active_clients,
    create_application,
    find_active_client,
    normalize_scope_list,
    public_keys,
    request_access,
    revoke_client,
    rotate_application_secret,
    set_application_keys,
    token_endpoint_url,
)

DEVELOPER_ROLES = ("developer", "superadmin")


def developer_user():
    return signed_in(*DEVELOPER_ROLES)


def owned_app(user, client_id: str):
    client = find_active_client(APPLICATION, client_id)
    if client is None or (user.role != "superadmin" and client.owner_user_id != user.id):
        raise WebError(404, "You have no such application.")
    return client


@bp.get("/developer")
def developer_home():
    user = developer_user()
    filters = {} if user.role == "superadmin" else {"owner_user_id": user.id}
    apps = [credential(c) for c in active_clients(APPLICATION, **filters)]
    return render_template("web/developer/home.html", user=user, apps=apps, notice=request.args.get("notice"))


def _keys_from_form():
    """Public keys from the JWKS and JWKS URL fields: None when both are empty.

    Raises ``JwksError`` with a message for the person at the form.
    """
    jwks = request.form.get("jwks", "").strip() or None
    jwks_uri = request.form.get("jwks_uri", "").strip() or None
    if jwks is None and jwks_uri is None:
        return None
    if jwks is not None and jwks_uri is not None:
        raise JwksError("Fill in either the JWK Set or the JWKS URL, not both.")
    return public_keys(jwks, jwks_uri)


def _new_app_page(user, form_id: str, error: str | None = None, status: int = 200):
    fields = {name: request.form.get(name, "") for name in ("name", "jwks", "jwks_uri")}
    page = render_template("web/developer/new.html", user=user, form_id=form_id, error=error, **fields)
    return page, status


@bp.get("/developer/apps/new")
def new_app():
    return _new_app_page(developer_user(), new_form_id())


@bp.post("/developer/apps")
def create_app():
    user = developer_user()
    form_id = submitted_form_id()
    name = " ".join(request.form.get("name", "").split())
    secret = request.form.get("client_secret", "") or None
    if not name or len(name) > 100:
        return _new_app_page(user, form_id, "Enter a name of 1 to 100 characters.", 400)
    try:
        keys = _keys_from_form()
    except JwksError as error:
        return _new_app_page(user, form_id, f"Public keys: {error}", 400)
    if keys is not None and secret is not None:
        return _new_app_page(user, form_id, "Use a client secret or public keys, not both.", 400)
    if secret is not None and (secret_problem := given_secret_problem(secret)):
        problem = f"The client secret {secret_problem} Leave it empty to have one generated."
        return _new_app_page(user, form_id, problem, 400)
    if not first_use(user, form_id):
        return render_template("web/developer/already_created.html", user=user), 409
    new = create_application(name, user.id, secret, keys)
    if keys is not None:  # nothing secret to show once: the app's page has it all
        target = url_for("web.app_details", client_id=new.client.client_id, notice="created")
        return redirect(target, code=303)
    return _secret_page(user, new, created=True)


def _secret_page(user, new, *, created: bool):
    return render_template(
        "web/developer/secret.html",
        user=user,
        created=created,
        name=new.client.name,
        client_id=new.client.client_id,
        secret=new.secret,
        token_url=token_endpoint_url(),
    )


def _app_page(user, client, *, error: str | None = None, status: int = 200):
    page = render_template(
        "web/developer/app.html",
        user=user,
        app=credential(client),
        auth=key_fields(client),
        hospitals=hospital_reach(client),
        token_url=token_endpoint_url(),
        form_id=new_form_id(),
        notice=request.args.get("notice"),
        error=error,
        jwks=request.form.get("jwks", ""),
        jwks_uri=request.form.get("jwks_uri", ""),
        requests=[access_request_json(r, c) for r, c in access_requests(client_id=client.client_id)],
        asked_hospital=request.form.get("hospital", ""),
        asked_message=request.form.get("message", ""),
        **grid(request.form),
    )
    return page, status


@bp.get("/developer/apps/<client_id>")
def app_details(client_id: str):
    user = developer_user()
    return _app_page(user, owned_app(user, client_id))


@bp.post("/developer/apps/<client_id>/keys")
def set_keys(client_id: str):
    """Authenticate with these public keys from now on (private_key_jwt)."""
    user = developer_user()
    client = owned_app(user, client_id)
    try:
        keys = _keys_from_form()
    except JwksError as error:
        return _app_page(user, client, error=f"Public keys: {error}", status=400)
    if keys is None:
        return _app_page(user, client, error="Paste a JWK Set or enter a JWKS URL.", status=400)
    set_application_keys(client, keys)
    return redirect(url_for("web.app_details", client_id=client.client_id, notice="keys"), code=303)


@bp.post("/developer/apps/<client_id>/secret")
def rotate_secret(client_id: str):
    """A new secret, shown once; the old one stops working at once."""
    user = developer_user()
    client = owned_app(user, client_id)
    if not first_use(user, submitted_form_id()):
        return render_template("web/developer/already_created.html", user=user), 409
    return _secret_page(user, rotate_application_secret(client), created=False)


@bp.post("/developer/apps/<client_id>/access-requests")
def ask_for_access(client_id: str):
    """Ask a hospital for access; its admins see the request until they answer it."""
    user = developer_user()
    client = owned_app(user, client_id)
    hospital_id = request.form.get("hospital", "").strip()
    message = " ".join(request.form.get("message", "").split()) or None
    if problem := access_request_problem(hospital_id):
        return _app_page(user, client, error=f"Hospital: {problem}", status=400)
    try:
        permissions = normalize_scope_list(permissions_from_grid(request.form), context="system")
    except ScopeError:
        return _app_page(user, client, error="Tick the permissions the application needs.", status=400)
    if message is not None and (len(message) > 500 or not storable(message)):
        problem = "The message needs at most 500 characters, without control characters."
        return _app_page(user, client, error=problem, status=400)
    request_access(client, hospital_id, permissions, message)
    return redirect(url_for("web.app_details", client_id=client.client_id, notice="asked"), code=303)


@bp.get("/developer/apps/<client_id>/delete")
def confirm_delete_app(client_id: str):
    user = developer_user()
    return render_template("web/developer/delete.html", user=user, app=credential(owned_app(user, client_id)))


@bp.post("/developer/apps/<client_id>/delete")
def delete_app(client_id: str):
    user = developer_user()
    revoke_client(owned_app(user, client_id))
    return redirect(url_for("web.developer_home", notice="deleted"), code=303)
