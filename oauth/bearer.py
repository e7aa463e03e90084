"""Bearer tokens at the resource server (RFC 6750 §2.1): who is calling, and for whom."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from oauth.credentials import secret_matches
from oauth.jws import JwsError
from oauth.models import PATIENT_CREDENTIAL
from oauth.scopes import resource_scopes
from oauth.tokens import decode_access_token, held_at, token_client_if_active, token_hospitals

MAX_HEADER_LENGTH = 8192


class InvalidTokenError(Exception):
    """RFC 6750 §3.1 ``invalid_token``; the message is safe to show the caller."""


class InsufficientScopeError(Exception):
    """RFC 6750 §3.1 ``insufficient_scope`` (403)."""


@dataclass(frozen=True)
class Principal:
    """The verified caller behind an access token."""

    client_id: str
    kind: str
    hospital_id: str
    patient_id: str | None
    scopes: tuple[str, ...]
    jti: str
    expires_at: int
    # ``user`` for a clinician's approval in an EHR launch with user/ scopes
    smart_context: str | None = None
    # The token's ``sub``: the client, or the person whose approval issued it
    subject: str | None = None

    @property
    def context(self) -> str:
        """The SMART context its scopes are read in: ``user`` for a clinician's EHR launch with
        user/ scopes (the patient is then only the app's context), ``patient`` for a patient's
        credential and for an application a patient approved (both carry the patient), else
        ``system``."""
        if self.smart_context is not None:
            return self.smart_context
        return "patient" if self.kind == PATIENT_CREDENTIAL or self.patient_id is not None else "system"


def authenticate_bearer(
    authorization: str | None,
    hospital_id: str,
    *,
    api_key: str | None = None,
    api_secret: str | None = None,
) -> Principal:
    """Verify the ``Authorization: Bearer`` header for a request to ``hospital_id``'s API.

    A hospital key made with ``require_key_headers`` ("three locks") also needs
    ``x-api-key`` and ``x-api-secret`` matching the key, compared in constant time.
    """
    claims = verified_claims(authorization, hospital_id)
    return principal_for(claims, hospital_id, api_key=api_key, api_secret=api_secret)


def principal_for(
    claims: dict, hospital_id: str, *, api_key: str | None = None, api_secret: str | None = None
) -> Principal:
    """The caller behind ``verified_claims``' answer: revocation, expiry and three-locks checks.

    Its scopes are those the token carries at ``hospital_id``: a token for several hospitals
    holds at each only what that hospital granted."""
    client = token_client_if_active(claims, hospital_id)
    if client is None:
        raise InvalidTokenError("The access token has expired or was revoked.")
    if client.require_key_headers:
        key_ok = hmac.compare_digest((api_key or "").encode(), client.client_id.encode())
        secret_ok = secret_matches(api_secret or "", client.secret_hash)
        if not (key_ok and secret_ok):
            raise InvalidTokenError("This API key also needs matching x-api-key and x-api-secret headers.")
    scopes = tuple(resource_scopes(held_at(claims, hospital_id)[0]))
    user_level = "authz" in claims and any(scope.startswith("user/") for scope in scopes)
    return Principal(
        client_id=client.client_id,
        kind=client.kind,
        hospital_id=hospital_id,
        patient_id=claims.get("patient"),
        scopes=scopes,
        jti=claims["jti"],
        expires_at=claims["exp"],
        smart_context="user" if user_level else None,
        subject=str(claims.get("sub")) if claims.get("sub") is not None else None,
    )


def verified_claims(authorization: str | None, hospital_id: str) -> dict:
    """The claims of a Bearer token of ours issued for ``hospital_id``'s API (signature, type,
    issuer, audience: the hospital's, or one of its audiences), before any revocation check;
    ``InvalidTokenError`` otherwise."""
    claims = bearer_claims(authorization)
    if held_at(claims, hospital_id) is None:
        raise InvalidTokenError("The access token was issued for another FHIR server.")
    return claims


def bearer_claims(authorization: str | None) -> dict:
    """The claims of a Bearer token of ours, whoever it is for, before any revocation check."""
    if not authorization:
        raise InvalidTokenError("An access token is required (Authorization: Bearer ...).")
    if len(authorization) > MAX_HEADER_LENGTH:
        raise InvalidTokenError("The Authorization header is too long.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidTokenError("Use the Bearer scheme: Authorization: Bearer <token>.")
    try:
        return decode_access_token(token)
    except JwsError as error:
        raise InvalidTokenError(f"The access token is invalid: {error}.") from None


def userinfo(authorization: str | None) -> dict:
    """OpenID Connect UserInfo (Core 1.0 §5.3) for an access token a patient's approval with
    ``openid`` issued, while it is valid: ``sub``, and ``fhirUser`` if granted."""
    claims = bearer_claims(authorization)
    hospital_ids = token_hospitals(claims)
    if "authz" not in claims or not hospital_ids or token_client_if_active(claims, hospital_ids[0]) is None:
        raise InvalidTokenError("The access token has expired, was revoked, or names no signed-in user.")
    if "openid" not in claims["scope"].split():
        raise InsufficientScopeError("The access token was not granted the openid scope.")
    fhir_user = claims.get("fhirUser")
    return {"sub": claims["sub"], **({"fhirUser": fhir_user} if isinstance(fhir_user, str) else {})}
