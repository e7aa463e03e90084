"""The developer portal: applications, their one-time secrets, and the hospitals they reach."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from app.api.apps import given_secret_problem, hospital_reach
from app.api.serialize import credential
from app.web import bp
from app.web.auth import signed_in
from app.web.once import first_use, new_form_id, submitted_form_id
from app.web.pages import WebError
from oauth import (
    APPLICATION,
    active_clients,
    create_application,
    find_active_client,
    revoke_client,
    rotate_application_secret,
    token_endpoint_url,
)

DEVELOPER_ROLES = ("developer", "superadmin")


def _developer():
    return signed_in(*DEVELOPER_ROLES)


def _own_app(user, client_id: str):
    client = find_active_client(APPLICATION, client_id)
    if client is None or (user.role != "superadmin" and client.owner_user_id != user.id):
        raise WebError(404, "You have no such application.")
    return client


@bp.get("/developer")
def developer_home():
    user = _developer()
    filters = {} if user.role == "superadmin" else {"owner_user_id": user.id}
    apps = [credential(c) for c in active_clients(APPLICATION, **filters)]
    return render_template("web/developer/home.html", user=user, apps=apps, notice=request.args.get("notice"))


@bp.get("/developer/apps/new")
def new_app():
    user = _developer()
    return render_template("web/developer/new.html", user=user, form_id=new_form_id(), error=None, name="")


@bp.post("/developer/apps")
def create_app():
    user = _developer()
    form_id = submitted_form_id()
    name = " ".join(request.form.get("name", "").split())
    secret = request.form.get("client_secret", "") or None
    problem = "Enter a name of 1 to 100 characters." if not name or len(name) > 100 else None
    if problem is None and secret is not None and (secret_problem := given_secret_problem(secret)):
        problem = f"The client secret {secret_problem} Leave it empty to have one generated."
    if problem:
        page = render_template("web/developer/new.html", user=user, form_id=form_id, error=problem, name=name)
        return page, 400
    if not first_use(user, form_id):
        return render_template("web/developer/already_created.html", user=user), 409
    new = create_application(name, user.id, secret)
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


@bp.get("/developer/apps/<client_id>")
def app_details(client_id: str):
    user = _developer()
    client = _own_app(user, client_id)
    return render_template(
        "web/developer/app.html",
        user=user,
        app=credential(client),
        hospitals=hospital_reach(client),
        token_url=token_endpoint_url(),
        form_id=new_form_id(),
    )


@bp.post("/developer/apps/<client_id>/secret")
def rotate_secret(client_id: str):
    """A new secret, shown once; the old one stops working at once."""
    user = _developer()
    client = _own_app(user, client_id)
    if not first_use(user, submitted_form_id()):
        return render_template("web/developer/already_created.html", user=user), 409
    return _secret_page(user, rotate_application_secret(client), created=False)


@bp.get("/developer/apps/<client_id>/delete")
def confirm_delete_app(client_id: str):
    user = _developer()
    return render_template("web/developer/delete.html", user=user, app=credential(_own_app(user, client_id)))


@bp.post("/developer/apps/<client_id>/delete")
def delete_app(client_id: str):
    user = _developer()
    revoke_client(_own_app(user, client_id))
    return redirect(url_for("web.developer_home", notice="deleted"), code=303)
