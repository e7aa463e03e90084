"""Which hospitals a client may reach, and with which granted scopes."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import SANDBOX_HOSPITAL_ID, Hospital
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
