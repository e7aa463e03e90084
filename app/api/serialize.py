"""JSON shapes of credentials in management API responses (never a secret)."""

from __future__ import annotations

from datetime import datetime

import orjson

from app.timeutil import as_utc, utcnow
from oauth import KEY_AUTH_METHOD, OAuthClient


def timestamp(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


def credential(client: OAuthClient, **extra) -> dict:
    return {
        "key": client.client_id,
        "name": client.name,
        "created": timestamp(client.created_at),
        "last_used": timestamp(client.last_used_at),
        **extra,
    }


def patient_credential(client: OAuthClient) -> dict:
    """A patient's key pair: also what it may read and when it ends by itself."""
    return credential(client, permissions=(client.scope or "").split(), expires=timestamp(client.expires_at))


def key_fields(client) -> dict:
    """How a client authenticates, its public keys and its last refused assertion."""
    if client.auth_methods == "none":  # a public application (oauth.registration)
        return {"auth_method": "none"}
    if KEY_AUTH_METHOD not in client.auth_methods.split():
        return {"auth_method": "client_secret"}
    failure = None
    if client.assertion_failure:
        failure = {"reason": client.assertion_failure, "at": timestamp(client.assertion_failure_at)}
    return {
        "auth_method": "private_key_jwt",
        "jwks": orjson.loads(client.jwks) if client.jwks else None,
        "jwks_uri": client.jwks_uri,
        "last_assertion_failure": failure,
    }


def approval_json(approval, client: OAuthClient | None) -> dict:
    """A patient's approval of an application (``oauth.models.Authorization``), as the patient,
    the hospital and the API see it: never its code or refresh tokens."""
    now = utcnow()
    if approval.revoked_at is not None:
        status = "revoked"
    elif approval.expires_at is not None and as_utc(approval.expires_at) <= now:
        status = "expired"
    else:
        status = "active"
    return {
        "id": approval.id,
        "client_id": approval.client_id,
        "app": client.name if client else approval.client_id,
        "publisher": client.publisher if client else None,
        "patient": approval.patient_id,
        "scope": approval.scope,
        "created": timestamp(approval.created_at),
        "expires": timestamp(approval.expires_at),
        "last_used": timestamp(approval.last_used_at),
        "status": status,
        "revoked": timestamp(approval.revoked_at),
        "revoked_reason": approval.revoked_reason,
    }
