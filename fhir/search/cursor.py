"""Paging cursors for ``next``/``previous`` links (FHIR R4B search.html#paging).

A cursor carries the original query, the offset and a snapshot (the newest history
sequence number when the first page was made): resources created after it never enter the
result, so paging yields each original match exactly once while others are being added.
It is signed with the server's key and bound to the hospital and the client that made it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
from flask import current_app

from fhir.errors import FhirError

MAX_CURSOR_LENGTH = 16384
STALE_CURSOR = "The paging cursor is not one this server reads (any more): repeat the request without it."


def _key() -> bytes:
    return hmac.new(
        current_app.config["SECRET_KEY"].encode(), b"fhirgate paging cursor v1", hashlib.sha256
    ).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_cursor(state: dict) -> str:
    payload = _b64(orjson.dumps(state))
    signature = _b64(hmac.new(_key(), payload.encode(), hashlib.sha256).digest()[:16])
    return f"{payload}.{signature}"


def decode_cursor(token: str, *, hospital_id: str, client_id: str) -> dict:
    """The cursor's state, if it is ours, intact, and made for this hospital and client."""
    invalid = FhirError.invalid("The paging cursor is not valid here; start the search again.")
    if len(token) > MAX_CURSOR_LENGTH or token.count(".") != 1:
        raise invalid
    payload, signature = token.split(".")
    expected = _b64(hmac.new(_key(), payload.encode(), hashlib.sha256).digest()[:16])
    if not hmac.compare_digest(signature, expected):
        raise invalid
    try:
        state = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise invalid from None
    if state.get("h") != hospital_id or state.get("c") != client_id:
        raise invalid
    return state


def decode_page_cursor(token: str, *, hospital_id: str, client_id: str, page_of: str) -> dict:
    """``decode_cursor`` for the next page of ``page_of`` (a search's type, a history's level, a
    ``$everything``): a cursor of another request is refused."""
    state = decode_cursor(token, hospital_id=hospital_id, client_id=client_id)
    if state.get("t") != page_of:
        raise FhirError.invalid("The paging cursor belongs to another request.")
    return state
