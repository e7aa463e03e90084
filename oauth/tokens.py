"""Access tokens: JWTs in the RFC 9068 profile, issued without any database write.

A token stays valid while its signature verifies against our key ring, it has not
expired, its client still exists unrevoked with the same ``gen`` (generation), its ``jti``
is not in the RFC 7009 deny-list, and (for applications) its hospital is still granted by
the very grant it was issued under (claim ``grant``, the grant's serial).

A token for one hospital has ``aud`` its FHIR base URL and ``scope``/``grant`` for it. A token
for several (an application that names no ``resource``) has ``aud`` the array of their base
URLs, ``scope`` the union of what it carries, and ``hospitals``: hospital id → ``{"scope",
"grant"}`` (``grant`` absent = 0, as at the top level), each hospital's own part. At a
hospital only that part counts — its scopes, checked against its grant under its serial — so
withdrawing or narrowing one hospital's grant ends the token there and nowhere else.
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
from oauth.errors import InvalidTargetError
from oauth.jws import RSA_ALGORITHM, JwsError, sign, sign_rs256, verify
from oauth.keys import keyring
from oauth.models import APPLICATION, PATIENT_CREDENTIAL, Authorization, OAuthClient, RevokedToken
from oauth.reach import Target
from oauth.scopes import ScopeError, covers, parse_scopes
from oauth.validity import ClientState, bump_epoch, validity_cache

TOKEN_TYPE = "at+jwt"
# A token must fit the resource server's Authorization header (``oauth.bearer``: 8 KiB, with
# "Bearer "), and common HTTP servers' 8 KiB limit for a header line: a token for very many
# hospitals that would not is refused at the token endpoint rather than given out useless.
MAX_TOKEN_LENGTH = 8000


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


@dataclass(frozen=True)
class Approved:
    """What an access token under an approval names of it (``oauth.models.Authorization``)."""

    id: str
    user_id: int
    hospital_id: str
    patient_id: str
    fhir_user: str | None = None  # "Patient/…" or "Practitioner/…", when fhirUser is granted


def issue_authorized_token(client: OAuthClient, approval: Authorization, scope: str, ttl: int) -> IssuedToken:
    """Sign an access token under an approval (SMART App Launch): ``sub`` the account that
    approved, ``patient`` the record, ``authz`` the approval, which it lives and dies with.
    ``scope``: the approval's, or a narrower one asked for at refresh."""
    approved = Approved(
        approval.id, approval.user_id, approval.hospital_id, approval.patient_id, approval.fhir_user
    )
    return mint_authorized_token(
        client, approved, scope, ttl, current_app.config["FHIRGATE_BASE_URL"], keyring().signing_key()
    )


def mint_authorized_token(
    client: OAuthClient,
    approval: Approved,
    scope: str,
    ttl: int,
    issuer: str,
    signing_key: tuple[str, ec.EllipticCurvePrivateKey],
) -> IssuedToken:
    """``issue_authorized_token`` given the issuer and the current key: no application context."""
    now = epoch()
    claims = {
        "iss": issuer,
        "sub": str(approval.user_id),
        "client_id": client.client_id,
        "aud": fhir_base_url(approval.hospital_id, issuer),
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
        "scope": scope,
        "gen": client.generation,
        "authz": approval.id,
        "patient": approval.patient_id,
    }
    if approval.fhir_user:  # for UserInfo, and for a resource server that wants to know
        claims["fhirUser"] = f"{fhir_base_url(approval.hospital_id, issuer)}/{approval.fhir_user}"
    return IssuedToken(signed_access_token(client, claims, signing_key), ttl, scope, approval.patient_id)


def signed_access_token(client: OAuthClient, claims: dict, signing_key) -> str:
    """ES256 with the current key, or RS256 with the key ring's RSA key for an application that
    registered ``access_token_signed_response_alg`` RS256 (that needs an application context:
    the fast paths leave such clients to the views)."""
    if client.access_token_alg == RSA_ALGORITHM:
        kid, key = keyring().id_token_signing_key()
        return sign_rs256(key, {"alg": RSA_ALGORITHM, "typ": TOKEN_TYPE, "kid": kid}, claims)
    kid, private_key = signing_key
    return sign(private_key, {"alg": "ES256", "typ": TOKEN_TYPE, "kid": kid}, claims)


def approval_response(issued: IssuedToken, granted: str, issuer: str) -> dict:
    """The token response under an approval (SMART App Launch §"Response"): ``patient`` for
    ``launch/patient`` and an EHR launch, which also gets ``need_patient_banner`` (the app is
    not embedded) and ``smart_style_url``. ``granted``: the approval's whole scope."""
    body = issued.response()
    scopes = granted.split()
    if "launch/patient" not in scopes and "launch" not in scopes:
        body.pop("patient", None)
    if "launch" in scopes:
        body["need_patient_banner"] = True
        body["smart_style_url"] = f"{issuer}/smart-style.json"
    return body


def issue_access_token(
    client: OAuthClient, target: Target, ttl: int, *, secret: str | None = None
) -> IssuedToken:
    """Sign an RFC 9068 access token for ``client`` at the hospitals of ``target``; ``secret``:
    the client secret the request authenticated with, for claims derived from it."""
    issuer = current_app.config["FHIRGATE_BASE_URL"]
    return mint_token(client, target, ttl, issuer, keyring().signing_key(), secret=secret)


def mint_access_token(
    client: OAuthClient,
    hospital_id: str,
    scope: str,
    ttl: int,
    issuer: str,
    signing_key: tuple[str, ec.EllipticCurvePrivateKey],
    grant_serial: int = 0,
) -> IssuedToken:
    """``mint_token`` for one hospital."""
    return mint_token(client, Target.one(hospital_id, scope, grant_serial), ttl, issuer, signing_key)


def mint_token(
    client: OAuthClient,
    target: Target,
    ttl: int,
    issuer: str,
    signing_key: tuple[str, ec.EllipticCurvePrivateKey],
    *,
    secret: str | None = None,
) -> IssuedToken:
    """``issue_access_token`` given the issuer (``FHIRGATE_BASE_URL``) and the current
    ``(kid, key)``: it needs no application context (but for RS256, see ``signed_access_token``,
    and with a ``secret``, the application's EHR integrations' claim: ``app.integrations``)."""
    now = epoch()
    several = len(target.hospitals) > 1
    claims = {
        "iss": issuer,
        "sub": client.client_id,
        "client_id": client.client_id,
        "aud": (
            [fhir_base_url(hospital_id, issuer) for hospital_id, _ in target.hospitals]
            if several
            else fhir_base_url(target.hospitals[0][0], issuer)
        ),
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
        "scope": target.scope,
        "gen": client.generation,
    }
    if several:
        claims["hospitals"] = {
            hospital_id: {"scope": held.scope, "grant": held.serial} if held.serial else {"scope": held.scope}
            for hospital_id, held in target.hospitals
        }
    elif target.hospitals[0][1].serial:
        claims["grant"] = target.hospitals[0][1].serial  # absent: 0 (no grant row, or before serials)
    patient = client.patient_id if client.kind == PATIENT_CREDENTIAL else None
    if patient:
        claims["patient"] = patient
    if secret is not None and client.kind == APPLICATION:
        integration_claims = current_app.extensions.get("fhirgate_token_claims")
        if integration_claims is not None:
            claims.update(integration_claims(client, secret, [h for h, _ in target.hospitals], claims["jti"]))
    token = signed_access_token(client, claims, signing_key)
    if several and len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTargetError(
            f"A token for all {len(target.hospitals)} hospitals this client reaches would be too large:"
            " name one with the resource parameter."
        )
    return IssuedToken(token, ttl, target.scope, patient)


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
    for name in ("sub", "client_id", "jti", "scope"):
        if not isinstance(claims.get(name), str):
            raise JwsError(f"the token lacks the {name} claim")
    for name in ("exp", "iat", "gen"):
        if not isinstance(claims.get(name), int):
            raise JwsError(f"the token lacks the {name} claim")
    if not isinstance(claims.get("grant", 0), int):
        raise JwsError("the token's grant claim is not a number")
    if "authz" in claims and not (
        isinstance(claims["authz"], str)
        and isinstance(claims.get("patient"), str)
        and isinstance(claims["aud"], str)
    ):
        raise JwsError("the token's authorization claims are malformed")
    _check_audiences(claims)
    if len(_verified) >= MAX_VERIFIED_TOKENS:
        _verified.clear()
    _verified[token] = (header["kid"], keyring().public_key(header["kid"]), dict(claims))
    return claims


def _check_audiences(claims: dict) -> None:
    """One hospital: ``aud`` a string, no ``hospitals``. Several: ``aud`` their base URLs, each
    once, and ``hospitals`` a part for each of them and for nothing else, no top-level ``grant``."""
    audience, parts = claims.get("aud"), claims.get("hospitals")
    if isinstance(audience, str):
        if parts is not None:
            raise JwsError("the token's hospitals claim does not match its audience")
        return
    if not isinstance(audience, list) or len(audience) < 2 or not all(isinstance(a, str) for a in audience):
        raise JwsError("the token lacks the aud claim")
    if not isinstance(parts, dict) or "grant" in claims:
        raise JwsError("the token's hospitals claim does not match its audience")
    named = [hospital_for_resource(url) for url in audience]
    if len(set(named)) != len(named) or set(named) != parts.keys():
        raise JwsError("the token's hospitals claim does not match its audience")
    for part in parts.values():
        if not (
            isinstance(part, dict)
            and part.keys() <= {"scope", "grant"}
            and isinstance(part.get("scope"), str)
            and isinstance(part.get("grant", 0), int)
        ):
            raise JwsError("the token's hospitals claim is malformed")


def held_at(claims: dict, hospital_id: str) -> tuple[str, int] | None:
    """What a decoded token carries at ``hospital_id`` — its scope there and the serial of the
    grant it was issued under — or None if the hospital is not one of its audiences."""
    audience = claims["aud"]
    if isinstance(audience, str):
        if hospital_for_resource(audience) != hospital_id:
            return None
        return claims["scope"], claims.get("grant", 0)
    part = claims["hospitals"].get(hospital_id)
    return None if part is None else (part["scope"], part.get("grant", 0))


def token_hospitals(claims: dict) -> list[str]:
    """The hospitals a decoded token is for, in its ``aud`` order."""
    audience = claims["aud"]
    if isinstance(audience, str):
        hospital_id = hospital_for_resource(audience)
        return [] if hospital_id is None else [hospital_id]
    return list(claims["hospitals"])


def token_client_if_active(claims: dict, hospital_id: str) -> ClientState | None:
    """The token's client if the token is still valid at ``hospital_id`` right now, else None."""
    client = _live_client(claims)
    if client is None or not _still_granted(client, claims, hospital_id):
        return None
    return client


def live_hospitals(claims: dict) -> list[str]:
    """The hospitals at which the token is still valid right now (RFC 7662: it is active while
    there is one), in its ``aud`` order."""
    client = _live_client(claims)
    if client is None:
        return []
    return [
        hospital_id for hospital_id in token_hospitals(claims) if _still_granted(client, claims, hospital_id)
    ]


def _live_client(claims: dict) -> ClientState | None:
    """The token's client, if the token has not expired, nor its client been deleted or
    revoked or its secret rotated, nor the token itself revoked (RFC 7009)."""
    now = epoch()
    if claims["exp"] <= now:
        return None
    cache = validity_cache()
    client = cache.client(claims["client_id"])
    if client is None or not client.live(now) or client.generation != claims["gen"]:
        return None
    if cache.jti_revoked(claims["jti"]):
        return None
    return client


def _still_granted(client: ClientState, claims: dict, hospital_id: str) -> bool:
    """Whether the client still holds, at ``hospital_id``, the grant the token was issued under
    there, and it still covers the scopes the token carries there; for a token issued under a
    patient's approval, whether that approval still stands there."""
    if "authz" in claims:
        return _still_approved(claims, hospital_id)
    held = held_at(claims, hospital_id)
    grant = validity_cache().grant(client, hospital_id) if held is not None else None
    if grant is None:
        return False
    (carried, token_serial), (granted, serial) = held, grant
    if token_serial != serial:
        return False  # issued under a grant since withdrawn (and perhaps made again)
    try:
        covering = parse_scopes(granted)
        return all(covers(covering, scope) for scope in parse_scopes(carried))
    except ScopeError:
        return False


def _still_approved(claims: dict, hospital_id: str) -> bool:
    approval = validity_cache().authorization(claims["authz"])
    return (
        approval is not None
        and approval.active
        and approval.hospital_id == hospital_id
        and approval.patient_id == claims["patient"]
        and (approval.expires_at is None or approval.expires_at > epoch())
        and set(claims["scope"].split()) <= approval.scope
    )


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
