"""Access tokens: JWTs in the RFC 9068 profile, issued without any database write.

A token stays valid while its signature verifies against our key ring, it has not
expired, its client still exists unrevoked with the same ``gen`` (generation), its ``jti``
is not in the RFC 7009 deny-list, and (for applications) its hospital is still granted by
the very grant it was issued under (claim ``grant``, the grant's serial).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.timeutil import epoch, utcnow
from oauth.audience import fhir_base_url, hospital_for_resource
from oauth.jws import JwsError, sign, verify
from oauth.keys import keyring
from oauth.models import PATIENT_CREDENTIAL, OAuthClient, RevokedToken
from oauth.scopes import ScopeError, covers, parse_scopes
from oauth.validity import ClientState, bump_epoch, validity_cache

TOKEN_TYPE = "at+jwt"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    patient: str | None

    def response(self) -> dict:
        """The RFC 6749 §5.1 token response body."""
        body = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.patient:
            body["patient"] = self.patient
        return body


def issue_access_token(
    client: OAuthClient, hospital_id: str, scope: str, ttl: int, grant_serial: int = 0
) -> IssuedToken:
    """Sign an RFC 9068 access token for ``client`` at ``hospital_id`` under the grant
    ``grant_serial`` (``oauth.reach.Reach.serial``)."""
    return mint_access_token(
        client,
        hospital_id,
        scope,
        ttl,
        current_app.config["FHIRGATE_BASE_URL"],
        keyring().signing_key(),
        grant_serial,
    )


def mint_access_token(
    client: OAuthClient,
    hospital_id: str,
    scope: str,
    ttl: int,
    issuer: str,
    signing_key: tuple[str, ec.EllipticCurvePrivateKey],
    grant_serial: int = 0,
) -> IssuedToken:
    """``issue_access_token`` given the issuer (``FHIRGATE_BASE_URL``) and the current
    ``(kid, key)``: it needs no application context."""
    kid, private_key = signing_key
    now = epoch()
    claims = {
        "iss": issuer,
        "sub": client.client_id,
        "client_id": client.client_id,
        "aud": fhir_base_url(hospital_id, issuer),
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
        "scope": scope,
        "gen": client.generation,
    }
    if grant_serial:
        claims["grant"] = grant_serial  # absent: 0 (no grant row, or issued before serials)
    patient = client.patient_id if client.kind == PATIENT_CREDENTIAL else None
    if patient:
        claims["patient"] = patient
    header = {"alg": "ES256", "typ": TOKEN_TYPE, "kid": kid}
    return IssuedToken(sign(private_key, header, claims), ttl, scope, patient)


# A client sends one token with many requests, and an ES256 verification costs ~0.5 ms: a
# token verified once is remembered with the key that verified it, and taken as verified
# again only while the key ring still holds that very key (rotation ends it; the
# revocation checks run on every request regardless). Bounded: emptied when full.
MAX_VERIFIED_TOKENS = 10_000
_verified: dict[str, tuple[str, ec.EllipticCurvePublicKey, dict]] = {}


def decode_access_token(token: str) -> dict:
    """Verify signature, type, issuer and claim shapes; expiry is left to the caller."""
    remembered = _verified.get(token)
    if remembered is not None:
        kid, key, claims = remembered
        if keyring().public_key(kid) is key and claims["iss"] == current_app.config["FHIRGATE_BASE_URL"]:
            return dict(claims)
    header, claims = verify(token, keyring().public_key, typ=TOKEN_TYPE)
    if claims.get("iss") != current_app.config["FHIRGATE_BASE_URL"]:
        raise JwsError("the token was issued by another server")
    for name in ("sub", "client_id", "aud", "jti", "scope"):
        if not isinstance(claims.get(name), str):
            raise JwsError(f"the token lacks the {name} claim")
    for name in ("exp", "iat", "gen"):
        if not isinstance(claims.get(name), int):
            raise JwsError(f"the token lacks the {name} claim")
    if not isinstance(claims.get("grant", 0), int):
        raise JwsError("the token's grant claim is not a number")
    if len(_verified) >= MAX_VERIFIED_TOKENS:
        _verified.clear()
    _verified[token] = (header["kid"], keyring().public_key(header["kid"]), dict(claims))
    return claims


def token_client_if_active(claims: dict) -> ClientState | None:
    """The token's client if the token is still valid right now, else None."""
    if claims["exp"] <= epoch():
        return None
    cache = validity_cache()
    client = cache.client(claims["client_id"])
    if client is None or not client.active or client.generation != claims["gen"]:
        return None
    if cache.jti_revoked(claims["jti"]):
        return None
    hospital_id = hospital_for_resource(claims["aud"])
    grant = cache.grant(client, hospital_id) if hospital_id else None
    if grant is None:
        return None
    granted, serial = grant
    if claims.get("grant", 0) != serial:
        return None  # issued under a grant since withdrawn (and perhaps made again)
    try:
        held = parse_scopes(granted)
        if not all(covers(held, scope) for scope in parse_scopes(claims["scope"])):
            return None
    except ScopeError:
        return None
    return client


def revoke_token_id(claims: dict) -> None:
    """Add the token's ``jti`` to the deny-list (RFC 7009 §2.1) and prune expired entries."""
    now = utcnow()
    db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
    db.session.commit()
    if db.session.get(RevokedToken, claims["jti"]) is None:
        db.session.add(
            RevokedToken(
                jti=claims["jti"],
                client_id=claims["client_id"],
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        )
        bump_epoch()
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()  # revoked by a parallel request: the outcome is the same
