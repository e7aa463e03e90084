"""Whether an access token is still good, answered from a per-worker cache.

Revoking anything — deleting a credential, rotating a secret, changing or withdrawing a
grant, revoking one token — bumps a single counter row (``oauth_epoch``) in the same
transaction. Each request reads that counter (one primary-key lookup of a one-row table)
and, when it changed, the worker drops its cached client states. So a revocation takes
effect on every worker and host at the next request, while the request path costs one
trivial query instead of three lookups per token.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flask import current_app, g
from sqlalchemy import Integer, update
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models import SANDBOX_HOSPITAL_ID, Hospital
from app.timeutil import as_utc
from oauth.epoch_reader import EPOCH_QUERY, epoch_reader
from oauth.models import APPLICATION, AppGrant, Authorization, OAuthClient, RevokedToken
from oauth.reach import SANDBOX_SCOPE, Reach, hospital_reach

MAX_REMEMBERED_JTIS = 100_000


class AuthEpoch(db.Model):
    """One row whose value changes whenever any credential, grant or token is revoked."""

    __tablename__ = "oauth_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def bump_epoch() -> int:
    """Mark every worker's cache stale; call inside the revoking transaction. Returns the new
    epoch: the row stays locked until the transaction ends, so no two transactions get the
    same value, and a later one a higher value."""
    bumped = db.session.execute(
        update(AuthEpoch)
        .where(AuthEpoch.id == 1)
        .values(value=AuthEpoch.value + 1)
        .returning(AuthEpoch.value)
    ).scalar()
    if bumped is None:  # the migration's row is missing: make it
        db.session.add(AuthEpoch(id=1, value=1))
        return 1
    return bumped


def _read_epoch() -> int:
    # Once per request. On PostgreSQL over libpq, without checking out a session connection
    # (~0.3 ms of CPU less); else, or if that fails, driver SQL (SQLAlchemy Core would add
    # ~0.45 ms a statement).
    reader = epoch_reader()
    if reader.direct:
        value = reader.read()
        if value is not None:
            return value
    value = db.session.connection().exec_driver_sql(EPOCH_QUERY).scalar()
    return value or 0


@dataclass(frozen=True)
class ClientState:
    client_id: str
    kind: str
    active: bool
    generation: int
    hospital_id: str | None
    patient_id: str | None
    scope: str
    require_key_headers: bool
    secret_hash: str | None
    expires_at: int | None = None  # Unix time a patient's key pair ends by itself

    def live(self, now: int) -> bool:
        return self.active and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class AuthorizationState:
    """What a patient's approval of an application allows now (``oauth.models.Authorization``)."""

    active: bool
    hospital_id: str
    patient_id: str
    scope: frozenset[str]
    expires_at: int | None  # Unix time; None: until revoked


class ValidityCache:
    """Client states, grants and revoked ids, valid for one epoch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._clients: dict[str, ClientState | None] = {}
        self._grants: dict[tuple[str, str], tuple[str, int] | None] = {}
        self._revoked: dict[str, bool] = {}
        self._authorizations: dict[str, AuthorizationState | None] = {}
        self._endpoint_clients: dict[str, tuple[OAuthClient, dict[str, Reach]]] = {}

    def sync(self) -> None:
        """Read the epoch once per request; drop everything if it moved."""
        if g.get("auth_epoch_checked"):
            return
        epoch = _read_epoch()
        g.auth_epoch_checked = True
        g.auth_epoch = epoch
        self.refresh(epoch)

    def adopt(self, epoch: int) -> None:
        """This request's epoch, read by the caller together with its own data in one
        statement: ``sync`` takes it instead of reading again."""
        g.auth_epoch_checked = True
        g.auth_epoch = epoch
        self.refresh(epoch)

    def refresh(self, epoch: int) -> None:
        """Drop everything cached if ``epoch``, just read, differs from the cache's."""
        if epoch != self._epoch:
            with self._lock:
                self._epoch = epoch
                self._clients, self._grants, self._revoked = {}, {}, {}
                self._authorizations = {}
                self._endpoint_clients = {}

    def _cached(self, store: str, key, missing=None):
        """The entry of dict ``store`` for ``key``, if the cache is still at this request's
        epoch; ``missing`` otherwise. (Another request may have labelled the cache with an
        epoch it read earlier than this one's: what it holds then is not this request's.)"""
        with self._lock:
            if not self._still_current():
                return missing
            return getattr(self, store).get(key, missing)

    def _still_current(self) -> bool:
        """Whether this request's epoch is still the cache's: a row loaded under an epoch that
        another thread has since replaced may predate the change, so it is used, not kept."""
        return self._epoch == g.get("auth_epoch")

    def client(self, client_id: str) -> ClientState | None:
        self.sync()
        state = self._cached("_clients", client_id, False)
        if state is False:
            row = db.session.get(OAuthClient, client_id) if len(client_id) <= 64 else None
            state = (
                None
                if row is None
                else ClientState(
                    row.client_id,
                    row.kind,
                    row.active,
                    row.generation,
                    row.hospital_id,
                    row.patient_id,
                    row.scope or "",
                    row.require_key_headers,
                    row.secret_hash,
                    None if row.expires_at is None else int(as_utc(row.expires_at).timestamp()),
                )
            )
            self._keep("_clients", client_id, state)
        return state

    def endpoint_client(self, client_id: str) -> tuple[OAuthClient, dict[str, Reach]] | None:
        """The client row for the token, introspection and revocation endpoints, detached from
        the session, with the hospitals it reaches; an unknown id is looked up every time."""
        self.sync()
        cached = self._cached("_endpoint_clients", client_id)
        if cached is None:
            row = db.session.get(OAuthClient, client_id)
            if row is None:
                return None
            cached = (row, hospital_reach(row))
            db.session.expunge(row)  # every column is loaded; the copy outlives the request
            with self._lock:
                if len(self._endpoint_clients) > MAX_REMEMBERED_JTIS:
                    self._endpoint_clients = {}
            self._keep("_endpoint_clients", client_id, cached)
        return cached

    def cached_endpoint_client(
        self, client_id: str
    ) -> tuple[OAuthClient, dict[str, Reach], int | None] | None:
        """What ``endpoint_client`` holds for ``client_id``, with the epoch it is valid for,
        loading nothing: None on a miss. The caller uses it only if the epoch it reads is
        that one. Looked up under the lock, so that the entry and the epoch belong together."""
        with self._lock:
            cached = self._endpoint_clients.get(client_id)
            return None if cached is None else (*cached, self._epoch)

    def grant(self, client: ClientState, hospital_id: str) -> tuple[str, int] | None:
        """The scopes the client holds at the hospital now, and the grant's serial."""
        self.sync()
        key = (client.client_id, hospital_id)
        grant = self._cached("_grants", key, False)
        if grant is False:
            grant = _load_grant(client, hospital_id)
            self._keep("_grants", key, grant)
        return grant

    def authorization(self, authorization_id: str) -> AuthorizationState | None:
        """A patient's approval, as its tokens' ``authz`` claim names it; None if there is none."""
        self.sync()
        state = self._cached("_authorizations", authorization_id, False)
        if state is False:
            row = db.session.get(Authorization, authorization_id) if len(authorization_id) <= 32 else None
            state = (
                None
                if row is None
                else AuthorizationState(
                    row.revoked_at is None,
                    row.hospital_id,
                    row.patient_id,
                    frozenset(row.scope.split()),
                    None if row.expires_at is None else int(as_utc(row.expires_at).timestamp()),
                )
            )
            with self._lock:
                if len(self._authorizations) > MAX_REMEMBERED_JTIS:
                    self._authorizations = {}
            self._keep("_authorizations", authorization_id, state)
        return state

    def jti_revoked(self, jti: str) -> bool:
        self.sync()
        revoked = self._cached("_revoked", jti)
        if revoked is None:
            revoked = db.session.get(RevokedToken, jti) is not None
            with self._lock:
                if len(self._revoked) > MAX_REMEMBERED_JTIS:
                    self._revoked = {}  # one entry per token seen: bound it between revocations
            self._keep("_revoked", jti, revoked)
        return revoked

    def _keep(self, store: str, key, value) -> None:
        """Remember a loaded value in the dict named ``store``, unless the epoch moved meanwhile
        (see ``_still_current``); the dict is looked up under the lock, as ``sync`` replaces it."""
        with self._lock:
            if self._still_current():
                getattr(self, store)[key] = value


def _load_grant(client: ClientState, hospital_id: str) -> tuple[str, int] | None:
    # As ``oauth.reach.hospital_reach``: a grant (even at the sandbox) before the sandbox's own
    # scope. A withdrawn-then-new grant has a new serial; narrowing is caught by the scope check.
    if client.kind != APPLICATION:
        return (client.scope, 0) if client.hospital_id == hospital_id else None
    grant = db.session.get(AppGrant, (client.client_id, hospital_id))
    if grant is not None:
        return grant.scope, grant.serial
    if hospital_id == SANDBOX_HOSPITAL_ID:
        return (SANDBOX_SCOPE, 0) if db.session.get(Hospital, SANDBOX_HOSPITAL_ID) is not None else None
    return None


def validity_cache() -> ValidityCache:
    return current_app.extensions["fhirgate_validity"]


def adopt_request_epoch(epoch: int) -> None:
    """See ``ValidityCache.adopt``: for a request that read ``EPOCH_QUERY`` with its data."""
    validity_cache().adopt(epoch)
