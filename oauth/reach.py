"""Which hospitals a client may reach, with which granted scopes, under which grant serial."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select

from app.extensions import db
from app.models import SANDBOX_HOSPITAL_ID, Hospital
from oauth.models import APPLICATION, AppGrant, OAuthClient

# Every application may read the sandbox hospital at once (test mode).
SANDBOX_SCOPE = "system/*.rs"


class Reach(NamedTuple):
    """The space-separated scopes a client holds at a hospital and the serial of the grant
    that gives them (``AppGrant.serial``; 0 where no grant row does: the sandbox's test mode,
    hospital keys and patient credentials), which the client's tokens carry."""

    scope: str
    serial: int = 0


class Target(NamedTuple):
    """What one access token is for: each hospital with the scopes the token carries there and
    the serial of the grant it is issued under (sorted by hospital id), and ``scope``, all the
    token carries (its ``scope`` claim: the union of the hospitals' scopes, in request order).

    One hospital makes the token RFC 9068's usual one (``aud`` a string); several make ``aud``
    an array and put each hospital's own scope and serial in the ``hospitals`` claim
    (``oauth.tokens``), so that each hospital judges the token by its own grant alone."""

    hospitals: tuple[tuple[str, Reach], ...]
    scope: str

    @classmethod
    def one(cls, hospital_id: str, scope: str, serial: int = 0) -> Target:
        return cls(((hospital_id, Reach(scope, serial)),), scope)


def hospital_reach(client: OAuthClient) -> dict[str, Reach]:
    """Map hospital id → what the client holds there."""
    if client.kind != APPLICATION:
        return {client.hospital_id: Reach(client.scope or "")}
    reach = {}
    if db.session.get(Hospital, SANDBOX_HOSPITAL_ID) is not None:
        reach[SANDBOX_HOSPITAL_ID] = Reach(SANDBOX_SCOPE)
    grants = db.session.execute(
        select(AppGrant.hospital_id, AppGrant.scope, AppGrant.serial).where(
            AppGrant.client_id == client.client_id
        )
    )
    for hospital_id, scope, serial in grants:
        reach[hospital_id] = Reach(scope, serial)
    return reach


def reachable_hospitals(client: OAuthClient) -> dict[str, str]:
    """Map hospital id → the space-separated scopes the client holds there."""
    return {hospital_id: held.scope for hospital_id, held in hospital_reach(client).items()}
