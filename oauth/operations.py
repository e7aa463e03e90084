"""Mutations of OAuth clients: create, rotate, revoke, grant. Views call these, nothing else.

Each function commits and returns what the caller must show the user exactly once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from app.extensions import db
from app.integrations.models import IntegrationCredential, IntegrationSalt
from app.timeutil import utcnow
from oauth.client_jwk import JwksError, public_jwks_json
from oauth.credentials import hash_secret, new_client_id, new_secret
from oauth.jwks_fetch import jwks_uri_problem
from oauth.models import (
    APPLICATION,
    HOSPITAL_KEY,
    KEY_AUTH_METHOD,
    PATIENT_CREDENTIAL,
    SECRET_AUTH_METHODS,
    AccessRequest,
    AppGrant,
    OAuthClient,
)
from oauth.reach import Target
from oauth.registration import PUBLIC_CLIENT, Metadata
from oauth.tokens import IssuedToken, issue_access_token
from oauth.validity import bump_epoch

PATIENT_DEFAULT_SCOPE = "patient/*.rs"
# What our client ids look like: anything else (a NUL, say) is no client, and no query.
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class NewCredential:
    client: OAuthClient
    secret: str | None  # None for a client that authenticates with its public keys
    token: IssuedToken | None = None


@dataclass(frozen=True)
class PublicKeys:
    """A client's public keys for ``private_key_jwt``: a JWK Set (JSON text) or its URL."""

    jwks: str | None = None
    jwks_uri: str | None = None


def public_keys(jwks: object = None, jwks_uri: object = None) -> PublicKeys:
    """Check keys a client registers; raise ``JwksError`` naming the field at fault."""
    if (jwks is None) == (jwks_uri is None):
        raise JwksError("Give either 'jwks' or 'jwks_uri', not both.")
    if jwks_uri is not None:
        if problem := jwks_uri_problem(jwks_uri, local_ok=current_app.config["FHIRGATE_JWKS_URI_LOCAL_OK"]):
            raise JwksError(f"'jwks_uri' {problem}")
        return PublicKeys(jwks_uri=jwks_uri)
    try:
        return PublicKeys(jwks=public_jwks_json(jwks))
    except JwksError as error:
        raise JwksError(f"'jwks': {error}.") from None


def _use_keys(client: OAuthClient, keys: PublicKeys) -> None:
    client.secret_hash = None
    client.auth_methods = KEY_AUTH_METHOD
    client.jwks, client.jwks_uri = keys.jwks, keys.jwks_uri
    client.assertion_failure = client.assertion_failure_at = None


def _new_client(
    kind: str,
    name: str,
    secret: str | None = None,
    keys: PublicKeys | None = None,
    *,
    public: bool = False,
    **fields,
) -> tuple[OAuthClient, str | None]:
    """A new client with a secret (given or generated), public keys, or — ``public`` — neither."""
    client = OAuthClient(
        client_id=new_client_id(kind), kind=kind, name=name, created_at=utcnow(), generation=0, **fields
    )
    if public:
        client.auth_methods = PUBLIC_CLIENT
        secret = None
    elif keys is not None:
        _use_keys(client, keys)
    else:
        secret = secret or new_secret(kind)
        client.secret_hash = hash_secret(secret)
        client.auth_methods = SECRET_AUTH_METHODS
    db.session.add(client)
    return client, secret if keys is None else None


def create_hospital_key(
    hospital_id: str,
    name: str,
    permissions: list[str],
    *,
    token_ttl: int,
    require_key_headers: bool,
    owner_user_id: int | None,
    keys: PublicKeys | None = None,
) -> NewCredential:
    """Create a hospital API key (a secret, or public keys) and an access token usable at once."""
    client, secret = _new_client(
        HOSPITAL_KEY,
        name,
        keys=keys,
        hospital_id=hospital_id,
        scope=" ".join(permissions),
        token_ttl=token_ttl,
        require_key_headers=require_key_headers,
        owner_user_id=owner_user_id,
    )
    # Signed before the row is flushed: on SQLite a pending write would block the key
    # ring's own session if it has to create the first signing key.
    token = issue_access_token(client, Target.one(hospital_id, client.scope), token_ttl)
    db.session.commit()
    return NewCredential(client, secret, token)


def create_patient_credential(
    hospital_id: str,
    patient_id: str,
    name: str,
    owner_user_id: int,
    *,
    scope: str = PATIENT_DEFAULT_SCOPE,
    lifetime: int | None = None,
) -> NewCredential:
    """A patient's key pair for one of their apps: ``scope`` the kinds of data it reads (all by
    default), ``lifetime`` seconds until it ends by itself (None: never, the default)."""
    client, secret = _new_client(
        PATIENT_CREDENTIAL,
        name,
        hospital_id=hospital_id,
        patient_id=patient_id,
        scope=scope,
        owner_user_id=owner_user_id,
        expires_at=None if lifetime is None else utcnow() + timedelta(seconds=lifetime),
    )
    db.session.commit()
    return NewCredential(client, secret)


def create_application(
    name: str,
    owner_user_id: int,
    client_secret: str | None,
    keys: PublicKeys | None = None,
    *,
    public: bool = False,
    registration: Metadata = Metadata(),
) -> NewCredential:
    """An application: with a secret (given or generated), public keys, or — ``public`` — neither
    (a browser or native app that proves itself with PKCE alone); ``registration``: its SMART
    App Launch metadata (``oauth.registration``)."""
    client, secret = _new_client(
        APPLICATION, name, client_secret, keys, public=public, owner_user_id=owner_user_id
    )
    _register(client, registration)
    db.session.commit()
    return NewCredential(client, secret)


def update_application_registration(client: OAuthClient, name: str | None, registration: Metadata) -> None:
    """Change an application's name and the SMART metadata given (the others stay)."""
    if name is not None:
        client.name = name
    _register(client, registration)
    db.session.commit()


def _register(client: OAuthClient, registration: Metadata) -> None:
    if registration.redirect_uris is not None:
        client.redirect_uris = json.dumps(list(registration.redirect_uris))
    for field in ("launch_uri", "client_uri", "publisher"):
        if (value := getattr(registration, field)) is not None:
            setattr(client, field, value)
    if registration.id_token_signed_response_alg is not None:
        client.id_token_alg = registration.id_token_signed_response_alg
    if registration.access_token_signed_response_alg is not None:
        client.access_token_alg = registration.access_token_signed_response_alg


def rotate_application_secret(client: OAuthClient) -> NewCredential:
    """New secret (replacing public keys, if the client had them); the old credentials and
    every token issued before stop working at once."""
    secret = new_secret(APPLICATION)
    client.secret_hash = hash_secret(secret)
    client.auth_methods = SECRET_AUTH_METHODS
    client.jwks = client.jwks_uri = None
    client.generation += 1
    bump_epoch()
    db.session.commit()
    return NewCredential(client, secret)


def set_application_keys(client: OAuthClient, keys: PublicKeys) -> None:
    """Authenticate with these public keys from now on; the secret (if any) and tokens
    issued before stop working at once."""
    _use_keys(client, keys)
    client.generation += 1
    bump_epoch()
    db.session.commit()


def revoke_client(client: OAuthClient) -> None:
    """Delete a credential: it can no longer authenticate and its tokens are dead."""
    client.revoked_at = utcnow()
    client.secret_hash = None
    db.session.execute(delete(AppGrant).where(AppGrant.client_id == client.client_id))
    db.session.execute(delete(AccessRequest).where(AccessRequest.client_id == client.client_id))
    # Its EHR credentials go with it (the row stays, revoked: no cascade deletes them).
    db.session.execute(
        delete(IntegrationCredential).where(IntegrationCredential.client_id == client.client_id)
    )
    db.session.execute(delete(IntegrationSalt).where(IntegrationSalt.client_id == client.client_id))
    bump_epoch()
    db.session.commit()


def grant_application(client: OAuthClient, hospital_id: str, permissions: list[str]) -> AppGrant:
    """Give (or change) the application's access; a request it made is answered by this."""
    db.session.execute(
        delete(AccessRequest).where(
            AccessRequest.client_id == client.client_id, AccessRequest.hospital_id == hospital_id
        )
    )
    grant = db.session.get(AppGrant, (client.client_id, hospital_id))
    now = utcnow()
    epoch = bump_epoch()
    if grant is None:
        # A new grant's serial is the epoch just bumped: higher than any earlier grant's, so
        # tokens of a withdrawn grant never match this one, however soon it follows.
        grant = AppGrant(client_id=client.client_id, hospital_id=hospital_id, created_at=now, serial=epoch)
        db.session.add(grant)
    grant.scope = " ".join(permissions)
    grant.updated_at = now
    db.session.commit()
    return grant


def withdraw_application(client: OAuthClient, hospital_id: str) -> bool:
    """Remove a hospital's grant; the app's tokens for that hospital die with it."""
    deleted = db.session.execute(
        delete(AppGrant).where(AppGrant.client_id == client.client_id, AppGrant.hospital_id == hospital_id)
    ).rowcount
    bump_epoch()
    db.session.commit()
    return bool(deleted)


def request_access(
    client: OAuthClient, hospital_id: str, permissions: list[str], message: str | None
) -> AccessRequest:
    """Ask a hospital for access (again: a new request replaces the waiting one)."""
    request = db.session.get(AccessRequest, (client.client_id, hospital_id))
    if request is None:
        request = AccessRequest(client_id=client.client_id, hospital_id=hospital_id)
        db.session.add(request)
    request.scope = " ".join(permissions)
    request.message = message
    request.created_at = utcnow()
    db.session.commit()
    return request


def decline_access_request(client_id: str, hospital_id: str) -> bool:
    if not _CLIENT_ID.fullmatch(client_id):
        return False
    deleted = db.session.execute(
        delete(AccessRequest).where(
            AccessRequest.client_id == client_id, AccessRequest.hospital_id == hospital_id
        )
    ).rowcount
    db.session.commit()
    return bool(deleted)


def access_requests(**filters) -> list[tuple[AccessRequest, OAuthClient]]:
    """Waiting requests of active applications (by ``hospital_id`` or ``client_id``), oldest first."""
    if "client_id" in filters and not _CLIENT_ID.fullmatch(filters["client_id"]):
        return []
    query = (
        select(AccessRequest, OAuthClient)
        .join(OAuthClient, OAuthClient.client_id == AccessRequest.client_id)
        .where(OAuthClient.revoked_at.is_(None))
        .where(*(getattr(AccessRequest, name) == value for name, value in filters.items()))
        .order_by(AccessRequest.created_at)
    )
    return [tuple(row) for row in db.session.execute(query)]


def active_clients(kind: str, **filters) -> list[OAuthClient]:
    query = select(OAuthClient).where(OAuthClient.kind == kind, OAuthClient.revoked_at.is_(None))
    for name, value in filters.items():
        query = query.where(getattr(OAuthClient, name) == value)
    return list(db.session.scalars(query.order_by(OAuthClient.created_at)))


def find_active_client(kind: str, client_id: str, **filters) -> OAuthClient | None:
    client = db.session.get(OAuthClient, client_id) if _CLIENT_ID.fullmatch(client_id) else None
    if client is None or client.kind != kind or not client.active:
        return None
    if any(getattr(client, name) != value for name, value in filters.items()):
        return None
    return client
