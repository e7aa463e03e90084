"""The developer portal's Integrations: a card per hospital with a switch, and a page per
connected hospital where the developer enters their own EHR credentials — locked by the
application's client secret, which they type in and which is not kept — or takes the operator's
test credentials; and switches the integration off."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from app.integrations.switching import (
    NEEDS_CREDENTIALS,
    ON,
    IntegrationError,
    credentials_needed,
    hospitals_with_upstreams,
    integration_of,
    integrations_of,
    switch_off,
    switch_on,
)
from app.models import SANDBOX_HOSPITAL_ID
from app.web import bp
from app.web.developer import developer_user, owned_app
from app.web.pages import WebError
from oauth import fhir_base_url, reachable_hospitals

# What each credential is called on the page, and whether it is a long text (a PEM key).
CREDENTIAL_LABELS = {
    "client_id": ("Client id at the EHR", False),
    "client_secret": ("Client secret at the EHR", False),
    "private_key": ("Private key (PEM) registered at the EHR", True),
    "kid": ("Key id (kid) at the EHR, if it asks for one", False),
    "access_token": ("Access token from the EHR", False),
    "api_key": ("API key from the EHR", False),
}


@bp.get("/developer/apps/<client_id>/integrations")
def integrations(client_id: str):
    user = developer_user()
    client = owned_app(user, client_id)
    states = {item.hospital.id: item for item in integrations_of(client)}
    reached = reachable_hospitals(client)
    cards = []
    for hospital, upstream in hospitals_with_upstreams():
        item = states.get(hospital.id)
        cards.append(
            {
                "id": hospital.id,
                "name": hospital.name,
                "connected": upstream is not None,
                "sandbox": hospital.id == SANDBOX_HOSPITAL_ID,
                "auth_kind": upstream.auth_kind.replace("_", " ") if upstream else None,
                "test_credentials": bool(upstream and upstream.test_credentials is not None),
                "status": item.status if item else ("on" if hospital.id in reached else "off"),
            }
        )
    return render_template(
        "web/developer/integrations.html",
        user=user,
        app=client,
        cards=cards,
        notice=request.args.get("notice"),
    )


def _integration_page(user, client, hospital_id: str, *, error: str | None = None, status: int = 200):
    item = integration_of(client, hospital_id)
    if item is None:
        raise WebError(404, "No connected hospital with this id.")
    upstream = item.upstream
    assert upstream is not None
    needed = credentials_needed(upstream)
    fields = [
        {
            "name": name,
            "label": CREDENTIAL_LABELS[name][0],
            "long": CREDENTIAL_LABELS[name][1],
            "required": True,
        }
        for name in needed["required"]
    ] + [
        {
            "name": name,
            "label": CREDENTIAL_LABELS[name][0],
            "long": CREDENTIAL_LABELS[name][1],
            "required": False,
        }
        for name in needed["optional"]
    ]
    page = render_template(
        "web/developer/integration.html",
        user=user,
        app=client,
        hospital=item.hospital,
        upstream=upstream,
        fhir_base_url=fhir_base_url(hospital_id),
        status=item.status,
        mode=item.credential.mode if item.credential else None,
        permissions=item.permissions or upstream.scope.split(),
        available=upstream.scope.split(),
        fields=fields,
        error=error,
        needs_credentials=item.status == NEEDS_CREDENTIALS,
        on=item.status == ON,
        notice=request.args.get("notice"),
    )
    return page, status


@bp.get("/developer/apps/<client_id>/integrations/<hospital_id>")
def view_integration(client_id: str, hospital_id: str):
    user = developer_user()
    return _integration_page(user, owned_app(user, client_id), hospital_id)


@bp.post("/developer/apps/<client_id>/integrations/<hospital_id>")
def save_integration(client_id: str, hospital_id: str):
    """Switch on, or enter the credentials again."""
    user = developer_user()
    client = owned_app(user, client_id)
    item = integration_of(client, hospital_id)
    if item is None or item.upstream is None:
        raise WebError(404, "No connected hospital with this id.")
    form = request.form
    use_test = form.get("use_test_credentials") == "on"
    needed = credentials_needed(item.upstream)
    credentials = {
        name: form.get(f"credential_{name}", "").strip()
        for name in needed["required"] + needed["optional"]
        if form.get(f"credential_{name}", "").strip()
    }
    permissions = form.getlist("permission") or None
    try:
        switch_on(
            client,
            item.upstream,
            address=request.remote_addr,
            credentials=None if use_test else credentials,
            client_secret=None if use_test else form.get("client_secret", ""),
            use_test_credentials=use_test,
            permissions=permissions,
        )
    except IntegrationError as error:
        message = (
            "That is not this application's current client secret." if error.status == 401 else str(error)
        )
        return _integration_page(user, client, hospital_id, error=message, status=min(error.status, 429))
    target = url_for("web.view_integration", client_id=client.client_id, hospital_id=hospital_id, notice="on")
    return redirect(target, code=303)


@bp.post("/developer/apps/<client_id>/integrations/<hospital_id>/off")
def switch_integration_off(client_id: str, hospital_id: str):
    user = developer_user()
    client = owned_app(user, client_id)
    switch_off(client, hospital_id)
    return redirect(url_for("web.integrations", client_id=client.client_id, notice="off"), code=303)
