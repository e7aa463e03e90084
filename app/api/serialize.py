"""JSON shapes of credentials in management API responses (never a secret)."""

from __future__ import annotations

from datetime import datetime

from app.timeutil import as_utc
from oauth import OAuthClient


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
