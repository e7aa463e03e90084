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
    set_passphrase,
    switch_off,
    switch_on,
    uses_passphrase,
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
    return _integrations_page(user, client, _cards(client))


def _cards(client) -> list[dict]:
    """A card per hospital: connected ones with the application's integration, local ones
    with whether it reaches them."""
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
    return cards


def _integrations_page(user, client, cards, *, error: str | None = None, status: int = 200):
    page = render_template(
        "web/developer/integrations.html",
        user=user,
        app=client,
        cards=cards,
        passphrase=uses_passphrase(client),
        notice=request.args.get("notice"),
        error=error,
    )
    return page, status


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
        passphrase=uses_passphrase(client),
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
            client_secret=None if use_test or uses_passphrase(client) else form.get("client_secret", ""),
            integration_passphrase=(
                form.get("integration_passphrase", "") if uses_passphrase(client) and not use_test else None
            ),
            use_test_credentials=use_test,
            permissions=permissions,
        )
    except IntegrationError as error:
        return _integration_page(user, client, hospital_id, error=str(error), status=_page_status(error))
    target = url_for("web.view_integration", client_id=client.client_id, hospital_id=hospital_id, notice="on")
    return redirect(target, code=303)


@bp.post("/developer/apps/<client_id>/integrations/<hospital_id>/off")
def switch_integration_off(client_id: str, hospital_id: str):
    user = developer_user()
    client = owned_app(user, client_id)
    switch_off(client, hospital_id)
    return redirect(url_for("web.integrations", client_id=client.client_id, notice="off"), code=303)


@bp.post("/developer/apps/<client_id>/integration-passphrase")
def save_integration_passphrase(client_id: str):
    """Set or change the passphrase that locks the EHR credentials of an application with keys."""
    user = developer_user()
    client = owned_app(user, client_id)
    current = request.form.get("current_passphrase") or None
    try:
        set_passphrase(client, request.form.get("passphrase", ""), current, request.remote_addr)
    except IntegrationError as error:
        return _integrations_page(
            user, client, _cards(client), error=str(error), status=min(error.status, 429)
        )
    return redirect(url_for("web.integrations", client_id=client.client_id, notice="passphrase"), code=303)


def _page_status(error: IntegrationError) -> int:
    """A wrong secret or passphrase is a 403 on a page: the developer is logged in."""
    return 403 if error.status == 401 else error.status
