"""OpenID Connect ID tokens (Core 1.0 §2) for the SMART App Launch's ``openid fhirUser``, and
the UserInfo answer (§5.3).

Signed RS256, OpenID Connect's default algorithm (Core §15.1; the SMART suites require it), by
the key ring's RSA key — or ES256 if the application registered ``id_token_signed_response_alg``
ES256. Issued at the code exchange only, with ``sub`` the patient's account,
``aud`` the client, ``nonce`` as sent with the authorization request, and for ``fhirUser`` the
absolute URL of the account's own resource (the patient's Patient, a clinician's Practitioner).
"""

from __future__ import annotations

from flask import current_app

from app.timeutil import epoch
from oauth.audience import fhir_base_url
from oauth.jws import ALGORITHM, sign, sign_rs256
from oauth.keys import ID_TOKEN_ALGORITHM, keyring
from oauth.models import Authorization, OAuthClient

ID_TOKEN_TTL = 3600


def identity_claims(user_id: int, hospital_id: str, fhir_user: str | None) -> dict:
    """``sub``, and ``fhirUser`` (the absolute URL of the account's own resource) when granted:
    what the ID token, the access token and UserInfo say of the user."""
    claims = {"sub": str(user_id)}
    if fhir_user:
        claims["fhirUser"] = f"{fhir_base_url(hospital_id)}/{fhir_user}"
    return claims


def issue_id_token(client: OAuthClient, approval: Authorization) -> str:
    now = epoch()
    claims = {
        "iss": current_app.config["FHIRGATE_BASE_URL"],
        **identity_claims(approval.user_id, approval.hospital_id, approval.fhir_user),
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": now,
        "exp": now + ID_TOKEN_TTL,
        "auth_time": int(approval.created_at.timestamp()),
    }
    if approval.nonce:
        claims["nonce"] = approval.nonce
    if client.id_token_alg == ALGORITHM:  # the application registered ES256
        kid, key = keyring().signing_key()
        return sign(key, {"alg": ALGORITHM, "typ": "JWT", "kid": kid}, claims)
    kid, key = keyring().id_token_signing_key()
    return sign_rs256(key, {"alg": ID_TOKEN_ALGORITHM, "typ": "JWT", "kid": kid}, claims)
