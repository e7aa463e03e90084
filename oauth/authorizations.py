"""A patient's approvals of applications: their codes, refresh tokens, and revocation.

The authorization code (RFC 6749 §4.1.2) lives 60 s, is used once and is bound to the client,
the exact redirect URI, the PKCE challenge (RFC 7636, S256 only), the hospital and the patient.
A second use revokes the approval and so every token the first use issued (RFC 6749 §4.1.2,
"SHOULD revoke"). Refresh tokens are opaque, stored as keyed hashes, used once each: every
refresh issues the next, and presenting a used one again revokes the approval (RFC 9700
§4.14.2). Nothing outlives the expiry the patient chose. Revoking bumps the revocation epoch,
so every worker stops accepting the approval's access tokens at its next request.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import timedelta

from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidScopeError
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import delete, select, update

from app.extensions import db
from app.models import User, WebSession
from app.timeutil import as_utc, utcnow
from oauth.authorize_request import AuthorizationRequest, AuthorizeRedirectError
from oauth.credentials import hash_secret
from oauth.ehr_launch import spend_launch
from oauth.models import Authorization, OAuthClient, RefreshToken
from oauth.scopes import split_scope
from oauth.validity import bump_epoch

CODE_TTL = timedelta(seconds=60)
CODE_PREFIX = "ac_"
REFRESH_PREFIX = "rt_"
MAX_PRESENTED_LENGTH = 200
# RFC 7636 §4.1: 43 to 128 unreserved characters.
CODE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def approve(
    request: AuthorizationRequest,
    user_id: int,
    patient_id: str,
    scope: str,
    lifetime: int | None,
    session_hash: str | None,
    fhir_user: str | None = None,
) -> str:
    """Record the approval — a patient's, or in an EHR launch the clinician's for the launched
    patient (whose launch it uses up) — and return its authorization code (shown once)."""
    now = utcnow()
    # Codes never exchanged are of no use once expired: forget them.
    db.session.execute(
        delete(Authorization).where(Authorization.code_used_at.is_(None), Authorization.code_expires_at < now)
    )
    if request.launch is not None and not spend_launch(request.launch):
        db.session.rollback()
        raise AuthorizeRedirectError(
            "invalid_request", "The launch was already used.", request.redirect_uri, request.state
        )
    code = CODE_PREFIX + secrets.token_urlsafe(32)
    db.session.add(
        Authorization(
            id=secrets.token_urlsafe(18),
            client_id=request.client.client_id,
            user_id=user_id,
            hospital_id=request.hospital_id,
            patient_id=patient_id,
            scope=scope,
            nonce=request.nonce,
            fhir_user=fhir_user if "fhirUser" in split_scope(scope) else None,
            code_hash=hash_secret(code),
            code_expires_at=now + CODE_TTL,
            redirect_uri=request.redirect_uri,
            redirect_uri_sent=request.redirect_uri_sent,
            code_challenge=request.code_challenge,
            session_hash=session_hash,
            created_at=now,
            expires_at=None if lifetime is None else now + timedelta(seconds=lifetime),
        )
    )
    db.session.commit()
    return code


def redeem_code(
    code: str, client: OAuthClient, redirect_uri: str | None, verifier: str | None
) -> Authorization:
    """RFC 6749 §4.1.3 and RFC 7636 §4.6: the approval behind a code, which is used up by this
    call whatever its outcome (a failed attempt still spends it); ``invalid_grant`` unless the
    code is fresh, unused, this client's, sent with its redirect URI and PKCE verifier."""
    approval = _presented(Authorization, Authorization.code_hash, code, CODE_PREFIX)
    if approval is None or approval.client_id != client.client_id:
        raise InvalidGrantError("The authorization code is invalid, or was issued to another client.")
    now = utcnow()
    spent = db.session.execute(
        update(Authorization)
        .where(Authorization.id == approval.id, Authorization.code_used_at.is_(None))
        .values(code_used_at=now)
    ).rowcount
    db.session.commit()
    if not spent:
        revoke_authorization(approval, "authorization code reused")
        raise InvalidGrantError("The authorization code was already used; the access it gave is revoked.")
    if as_utc(approval.code_expires_at) <= now:
        raise InvalidGrantError("The authorization code has expired.")
    if approval.revoked_at is not None:
        raise InvalidGrantError("The authorization was revoked.")
    if redirect_uri != approval.redirect_uri and (approval.redirect_uri_sent or redirect_uri is not None):
        raise InvalidGrantError("redirect_uri differs from the authorization request's.")
    if not verifier or not CODE_VERIFIER.fullmatch(verifier):
        raise InvalidGrantError("code_verifier is missing or malformed (RFC 7636: 43 to 128 characters).")
    if not hmac.compare_digest(create_s256_code_challenge(verifier), approval.code_challenge):
        raise InvalidGrantError("code_verifier does not match the code_challenge.")
    return approval


def new_refresh_token(approval: Authorization) -> str:
    """A refresh token for the approval; the caller commits."""
    token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    db.session.add(
        RefreshToken(token_hash=hash_secret(token), authorization_id=approval.id, created_at=utcnow())
    )
    return token


def redeem_refresh_token(token: str, client: OAuthClient, requested: str | None) -> tuple[Authorization, str]:
    """RFC 6749 §6: the approval behind a refresh token, which this use spends, and the scope of
    the new access token (``requested``, narrower or equal, or the approval's). A token used
    before revokes the approval (RFC 9700 §4.14.2); ``invalid_grant`` for anything not valid.
    A request refused before the token is spent (another client's, a scope too wide) spends
    nothing."""
    presented = _presented(RefreshToken, RefreshToken.token_hash, token, REFRESH_PREFIX)
    approval = db.session.get(Authorization, presented.authorization_id) if presented is not None else None
    if approval is None or approval.client_id != client.client_id:
        raise InvalidGrantError("The refresh token is invalid, or was issued to another client.")
    scope = _narrowed(approval.scope, requested)
    spent = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == presented.token_hash, RefreshToken.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    db.session.commit()
    if not spent:
        revoke_authorization(approval, "refresh token reused")
        raise InvalidGrantError("The refresh token was already used; the authorization is revoked.")
    problem = lapsed(approval)
    if problem:
        raise InvalidGrantError(problem)
    return approval, scope


def _narrowed(granted: str, requested: str | None) -> str:
    if requested is None:
        return granted
    wanted = list(dict.fromkeys(split_scope(requested)))
    if not wanted or not set(wanted) <= set(split_scope(granted)):
        raise InvalidScopeError("The requested scope exceeds what the patient granted.")
    return " ".join(wanted)


def refresh_token_state(token: str) -> tuple[Authorization, bool] | None:
    """A refresh token's approval, and whether the token would refresh now (unused, and the
    approval neither revoked nor expired nor its online session ended); None: no such token."""
    presented = _presented(RefreshToken, RefreshToken.token_hash, token, REFRESH_PREFIX)
    approval = db.session.get(Authorization, presented.authorization_id) if presented is not None else None
    if approval is None:
        return None
    return approval, presented.used_at is None and lapsed(approval) is None


def refresh_token_client(token: str) -> str | None:
    """The client a refresh token was issued to, used or not (None: no such token)."""
    found = refresh_token_state(token)
    return found[0].client_id if found is not None else None


def lapsed(approval: Authorization) -> str | None:
    """Why the approval no longer yields tokens, or None."""
    now = utcnow()
    if approval.revoked_at is not None:
        return "The authorization was revoked."
    if approval.expires_at is not None and as_utc(approval.expires_at) <= now:
        return "The authorization has expired."
    user = db.session.get(User, approval.user_id)
    if user is None or user.disabled_at is not None:
        return "The account that approved was disabled."
    if approval.session_hash is not None:  # online_access: while the approving session lasts
        session = db.session.get(WebSession, approval.session_hash)
        if session is None or as_utc(session.expires_at) <= now:
            return "The patient's session has ended (online_access)."
    return None


def seconds_left(approval: Authorization) -> int | None:
    if approval.expires_at is None:
        return None
    return int((as_utc(approval.expires_at) - utcnow()).total_seconds())


def note_authorization_used(approval: Authorization) -> None:
    approval.last_used_at = utcnow()


def revoke_authorization(approval: Authorization, reason: str) -> None:
    """End the approval: its refresh tokens are refused from now on (kept, as hashes, so that
    their client still gets ``invalid_grant``) and its access tokens fail everywhere from the
    next request (the epoch moves in the same transaction)."""
    approval = db.session.merge(approval)
    if approval.revoked_at is None:
        approval.revoked_at = utcnow()
        approval.revoked_reason = reason[:100]
    bump_epoch()
    db.session.commit()


def authorizations_of(user_id: int) -> list[Authorization]:
    """A patient's approvals that gave an app tokens (an approval whose code was never, or
    never successfully, exchanged gave nothing), newest first."""
    return list(
        db.session.scalars(
            select(Authorization)
            .where(Authorization.user_id == user_id, Authorization.last_used_at.is_not(None))
            .order_by(Authorization.created_at.desc())
        )
    )


def authorizations_at(hospital_id: str) -> list[Authorization]:
    """Every approval at a hospital that gave an app tokens, newest first (the hospital's
    oversight)."""
    return list(
        db.session.scalars(
            select(Authorization)
            .where(Authorization.hospital_id == hospital_id, Authorization.last_used_at.is_not(None))
            .order_by(Authorization.created_at.desc())
        )
    )


def hospital_authorization(approval_id: str, hospital_id: str) -> Authorization | None:
    approval = db.session.get(Authorization, approval_id) if len(approval_id) <= 32 else None
    if approval is None or approval.hospital_id != hospital_id or approval.last_used_at is None:
        return None
    return approval


def owned_authorization(approval_id: str, user_id: int) -> Authorization | None:
    """One of ``authorizations_of(user_id)``, by id."""
    approval = db.session.get(Authorization, approval_id) if len(approval_id) <= 32 else None
    if approval is None or approval.user_id != user_id or approval.last_used_at is None:
        return None
    return approval


def _presented(model, column, value: str | None, prefix: str):
    if not isinstance(value, str) or not value.startswith(prefix) or len(value) > MAX_PRESENTED_LENGTH:
        return None
    return db.session.scalar(select(model).where(column == hash_secret(value)))
