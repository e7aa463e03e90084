"""What a FHIR request to a connected hospital needs before it is forwarded: whether the hospital
is connected, the calling application, and its EHR credentials opened with the key the request
brought.

The key comes one of two ways. With ``X-Client-Id`` and ``X-Client-Secret`` on the request (as
Leyr takes them) the secret is checked as the token endpoint checks it — the same failure limit
per address and client — and the key is derived from it. With an access token of ours, the
token carries the key sealed under a short-lived server key (``token_keys``), and the key dies
with the token. Either way nothing that opens the credentials is stored.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from flask import current_app, g

from app.extensions import db
from app.integrations.models import OWN, HospitalUpstream, IntegrationCredential, IntegrationSalt
from app.integrations.sealing import Unopenable, integration_key, unseal, unseal_test_credentials
from app.integrations.switching import IntegrationError, passphrase_key_of
from app.integrations.token_keys import TokenKeys, token_keys
from app.integrations.upstream_auth import Credentials, Upstream
from oauth import APPLICATION, Principal, resource_scopes
from oauth.credentials import secret_matches
from oauth.token_limits import count as count_token_request
from oauth.token_limits import retry_after
from oauth.validity import validity_cache

HEADER_PRINCIPAL_SECONDS = 60  # a header-authenticated request's principal is good for itself only


class IntegrationDenied(Exception):
    """The request cannot use the integration: ``status`` 401 (no or a wrong secret, a key that
    opens nothing), 403 (not switched on), 429 (too many wrong secrets, ``retry_after``)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Switched:
    """An application's switched-on integration, as a worker keeps it for an epoch."""

    mode: str
    sealed: bytes | None
    generation: int


class ConnectedHospitals:
    """Which hospitals are connected, and applications' integrations with them, per worker, as
    of a revocation epoch: connecting, disconnecting, switching on or off and re-sealing all
    bump the epoch, so every worker sees them on its next request."""

    def __init__(self) -> None:
        self._epoch: int | None = None
        self._upstreams: dict[str, Upstream] = {}
        self._test_credentials: dict[str, bytes] = {}
        self._switched: dict[tuple[str, str], Switched | None] = {}
        self._lock = threading.Lock()

    def may_reach(self, hospital_ids: list[str], epoch: int) -> bool:
        """Whether any of the hospitals is connected at ``epoch`` — or may be: True also when
        this worker has not read the connections of that epoch yet (it loads nothing here)."""
        with self._lock:
            return self._epoch != epoch or any(hospital_id in self._upstreams for hospital_id in hospital_ids)

    def known_connected(self, hospital_id: str) -> bool:
        """Whether the hospital was connected at the last epoch read (loads nothing)."""
        return hospital_id in self._upstreams

    def upstream(self, hospital_id: str, epoch: int) -> Upstream | None:
        with self._lock:
            if self._epoch == epoch:
                return self._upstreams.get(hospital_id)
        # Read after the epoch was: what is read is at least as new as ``epoch``.
        rows = db.session.scalars(db.select(HospitalUpstream)).all()
        upstreams = {
            row.hospital_id: Upstream(
                row.hospital_id, row.base_url, row.auth_kind, row.token_url, row.api_key_header, row.scope
            )
            for row in rows
        }
        tests = {row.hospital_id: row.test_credentials for row in rows if row.test_credentials is not None}
        with self._lock:
            self._epoch, self._upstreams, self._test_credentials, self._switched = epoch, upstreams, tests, {}
        return upstreams.get(hospital_id)

    def test_credentials(self, hospital_id: str, epoch: int) -> bytes | None:
        self.upstream(hospital_id, epoch)
        with self._lock:  # (loaded at ``epoch`` or, by another request meanwhile, a newer one)
            return self._test_credentials.get(hospital_id)

    def switched(self, client_id: str, hospital_id: str, epoch: int) -> Switched | None:
        """The application's integration with the hospital at ``epoch``; None: switched off."""
        self.upstream(hospital_id, epoch)
        key = (client_id, hospital_id)
        with self._lock:
            if self._epoch == epoch and key in self._switched:
                return self._switched[key]
        row = db.session.get(IntegrationCredential, key)
        switched = None if row is None else Switched(row.mode, row.sealed, row.generation)
        with self._lock:
            if self._epoch == epoch:
                if len(self._switched) > 10_000:
                    self._switched = {}
                self._switched[key] = switched
        return switched


def connected_hospitals() -> ConnectedHospitals:
    return current_app.extensions["fhirgate_connected_hospitals"]


def integration_claims(client, secret: str, hospital_ids: list[str], jti: str) -> dict:
    """The ``ik`` claim of an application's token from a secret-authenticated request: its
    integration key sealed for the token (``token_keys``), when the token reaches a connected
    hospital and the application's credentials are sealed under this secret's generation."""
    validity = validity_cache()
    validity.sync()
    connected = connected_hospitals()
    if not any(connected.upstream(hospital_id, g.auth_epoch) for hospital_id in hospital_ids):
        return {}
    salt = db.session.get(IntegrationSalt, client.client_id)
    if salt is None or salt.generation != client.generation:
        return {}
    return {"ik": token_keys().seal(integration_key(secret, salt.salt), jti)}


def connected_upstream(hospital_id: str) -> Upstream | None:
    """The hospital's upstream if it is connected, as of this request's revocation epoch."""
    validity = validity_cache()
    validity.sync()
    return connected_hospitals().upstream(hospital_id, g.auth_epoch)


def connected_at(app, hospital_id: str, epoch: int) -> bool:
    """For the fast paths, which read the epoch themselves (inside an app context)."""
    return app.extensions["fhirgate_connected_hospitals"].upstream(hospital_id, epoch) is not None


@dataclass(frozen=True)
class Opened:
    credentials: Credentials
    sealed_id: bytes  # names the sealed credentials (their SHA-256) for the upstream token cache


def principal_from_secret(
    client_id: str, secret: str, hospital_id: str, address: str | None
) -> tuple[Principal, bytes]:
    """The application behind ``X-Client-Id``/``X-Client-Secret`` and its integration key."""
    wait = retry_after(client_id, address, per_client=False)
    if wait is not None:
        raise IntegrationDenied(429, "Too many failed attempts for this client; try again later.", wait)
    validity = validity_cache()
    client = validity.client(client_id) if len(client_id) <= 64 else None
    if (
        client is None
        or client.kind != APPLICATION
        or not client.live(int(time.time()))
        or not secret_matches(secret, client.secret_hash)
    ):
        count_token_request(None, client_id, address, 401)
        raise IntegrationDenied(
            401, "X-Client-Id and X-Client-Secret do not name an application's current secret."
        )
    grant = validity.grant(client, hospital_id)
    if grant is None:
        raise IntegrationDenied(403, "This application's integration with this hospital is not switched on.")
    salt = db.session.get(IntegrationSalt, client_id)
    key = (
        integration_key(secret, salt.salt)
        if salt is not None and salt.generation == client.generation
        else b""
    )
    principal = Principal(
        client_id=client_id,
        kind=APPLICATION,
        hospital_id=hospital_id,
        patient_id=None,
        scopes=tuple(resource_scopes(grant[0])),
        jti="",
        expires_at=int(time.time()) + HEADER_PRINCIPAL_SECONDS,
        subject=client_id,
    )
    return principal, key


def key_from_passphrase(principal: Principal, passphrase: str, address: str | None) -> bytes:
    """The integration key of an application without a secret, from the passphrase its request
    brought (``X-Integration-Passphrase``), checked with the token endpoint's failure limit."""
    client = validity_cache().client(principal.client_id)
    try:
        return passphrase_key_of(
            principal.client_id, client.generation if client else -1, passphrase, address
        )
    except IntegrationError as error:
        raise IntegrationDenied(
            401 if error.status == 400 else error.status, str(error), error.retry_after
        ) from None


def key_from_token(claims: dict) -> bytes | None:
    """The integration key an access token of ours carries (claim ``ik``), if any still opens."""
    return token_keys().open(claims.get("ik"), str(claims.get("jti", "")))


def opened_credentials(principal: Principal, upstream: Upstream, key: bytes | None) -> Opened:
    """The application's credentials for the upstream, opened with the request's key (the
    operator's test credentials need none), as of the request's revocation epoch."""
    connected, epoch = connected_hospitals(), g.auth_epoch
    switched = connected.switched(principal.client_id, upstream.hospital_id, epoch)
    if switched is None:
        raise IntegrationDenied(403, "This application's integration with this hospital is not switched on.")
    if switched.mode != OWN:
        sealed = connected.test_credentials(upstream.hospital_id, epoch)
        if sealed is None:
            raise IntegrationDenied(403, "This hospital no longer offers test credentials.")
        opened = unseal_test_credentials(current_app.config["FHIRGATE_KEK"], upstream.hospital_id, sealed)
        return Opened(opened, b"test:" + hashlib.sha256(sealed).digest())
    client = validity_cache().client(principal.client_id)
    if client is None or switched.generation != client.generation or switched.sealed is None:
        raise IntegrationDenied(
            401,
            "The application's EHR credentials for this hospital were sealed under an earlier client "
            "secret: enter them again under Integrations.",
        )
    if not key:
        raise IntegrationDenied(
            401,
            "This hospital is reached with the application's own EHR credentials, which only its client "
            "secret opens: send X-Client-Id and X-Client-Secret, or a token from a secret-authenticated "
            "token request (an application with public keys: its token and X-Integration-Passphrase).",
        )
    try:
        opened = unseal(key, principal.client_id, upstream.hospital_id, switched.sealed)
    except Unopenable:
        raise IntegrationDenied(
            401,
            "The key this request brought does not open the application's EHR credentials for this hospital.",
        ) from None
    return Opened(opened, hashlib.sha256(switched.sealed).digest())


def init_gateway(app) -> None:
    app.extensions["fhirgate_connected_hospitals"] = ConnectedHospitals()
    app.extensions["fhirgate_token_keys"] = TokenKeys()
    app.extensions["fhirgate_token_claims"] = integration_claims  # called by oauth.tokens.mint_token
