"""Which hospitals a client may reach, and with which granted scopes."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import SANDBOX_HOSPITAL_ID, Hospital
from app.timeutil import as_utc
from oauth.models import APPLICATION, AppGrant, OAuthClient

# Every application may read the sandbox hospital at once (test mode).
SANDBOX_SCOPE = "system/*.rs"


def reachable_hospitals(client: OAuthClient) -> dict[str, str]:
    """Map hospital id → the space-separated scopes the client holds there."""
    if client.kind != APPLICATION:
        return {client.hospital_id: client.scope or ""}
    reach = {}
    if db.session.get(Hospital, SANDBOX_HOSPITAL_ID) is not None:
        reach[SANDBOX_HOSPITAL_ID] = SANDBOX_SCOPE
    grants = db.session.execute(
        select(AppGrant.hospital_id, AppGrant.scope).where(AppGrant.client_id == client.client_id)
    )
    for hospital_id, scope in grants:
        reach[hospital_id] = scope
    return reach


def current_grant(client: OAuthClient, hospital_id: str) -> tuple[str, int] | None:
    """The scopes the client holds at the hospital now, and since when (epoch seconds).

    A token is honoured only if it was issued after that moment and within those scopes:
    narrowing or withdrawing a grant (and granting again) ends every earlier token.
    """
    if client.kind != APPLICATION:
        return (client.scope or "", 0) if client.hospital_id == hospital_id else None
    if hospital_id == SANDBOX_HOSPITAL_ID:
        sandbox = db.session.get(Hospital, SANDBOX_HOSPITAL_ID) is not None
        return (SANDBOX_SCOPE, 0) if sandbox else None
    grant = db.session.get(AppGrant, (client.client_id, hospital_id))
    if grant is None:
        return None
    # Narrowing is caught by the scope check; a withdrawn-then-new grant is a new row.
    return grant.scope, int(as_utc(grant.created_at).timestamp())
