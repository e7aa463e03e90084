"""Reading and checking JSON request bodies of the management API.

``/api/*`` accepts only ``application/json`` bodies: a cross-site form cannot send one
without a CORS preflight, so no CSRF token is needed here.
"""

from __future__ import annotations

import re
import unicodedata

from flask import request

from app.errors import ApiError
from app.json_depth import nested_within
from oauth import JwksError, PublicKeys, public_keys

# The management API's bodies are flat but for a JWK Set (5 levels); nothing needs more.
MAX_BODY_DEPTH = 32
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def parsed_json() -> object:
    """The JSON body, or None when it is not well-formed JSON (bad UTF-8...) or nests deeper
    than MAX_BODY_DEPTH (nothing after this may recurse through it)."""
    try:
        body = request.get_json(silent=True)
    except (RecursionError, ValueError):
        return None
    return body if nested_within(body, MAX_BODY_DEPTH) else None


def json_body(*, required: set[str] = frozenset(), optional: set[str] = frozenset()) -> dict:
    """The request's JSON object, with exactly the allowed fields."""
    if request.mimetype != "application/json":
        raise ApiError(415, "Send a JSON body with Content-Type: application/json.")
    body = parsed_json()
    if not isinstance(body, dict):
        raise ApiError(400, f"The body must be a JSON object, nested at most {MAX_BODY_DEPTH} levels deep.")
    unknown = set(body) - required - optional
    if unknown:
        raise ApiError(400, f"Unknown field(s): {', '.join(sorted(unknown))[:200]}.")
    missing = required - set(body)
    if missing:
        raise ApiError(400, f"Missing field(s): {', '.join(sorted(missing))}.")
    return body


def storable(value: str) -> bool:
    """No control characters (NUL breaks PostgreSQL) and no lone surrogates."""
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def text_field(body: dict, name: str, *, max_length: int = 200, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"'{name}' must be a non-empty string.")
    value = value.strip()
    if len(value) > max_length:
        raise ApiError(400, f"'{name}' is longer than {max_length} characters.")
    if not storable(value):
        raise ApiError(400, f"'{name}' contains control characters.")
    return value


def password_field(body: dict, name: str = "password") -> str:
    """A password exactly as typed (never trimmed), without control characters."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"'{name}' must be a non-empty string.")
    if len(value) > 1024 or not storable(value):
        raise ApiError(400, f"'{name}' must be at most 1024 characters, without control characters.")
    return value


def bool_field(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be true or false.")
    return value


def int_field(body: dict, name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ApiError(400, f"'{name}' must be a whole number from {minimum} to {maximum}.")
    return value


def list_field(body: dict, name: str) -> list:
    value = body.get(name)
    if not isinstance(value, list):
        raise ApiError(400, f"'{name}' must be a list.")
    return value


def email_field(body: dict, name: str = "email") -> str:
    value = text_field(body, name, max_length=320)
    if not EMAIL.match(value):
        raise ApiError(400, f"'{name}' is not an e-mail address.")
    return value.lower()


def keys_field(body: dict) -> PublicKeys | None:
    """The public keys a body registers (``jwks`` or ``jwks_uri``), or None."""
    if "jwks" not in body and "jwks_uri" not in body:
        return None
    try:
        return public_keys(body.get("jwks"), body.get("jwks_uri"))
    except JwksError as error:
        raise ApiError(400, str(error)) from None
