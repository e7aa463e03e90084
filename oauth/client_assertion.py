"""``private_key_jwt`` client authentication: RFC 7523 §2.2 and §3 as SMART Backend Services
profiles it (SMART App Launch 2.x, "Backend Services", client authentication).

Every refusal is ``invalid_client`` (401) whose description names the check that failed and
never repeats what the assertion carried. Once the client is known, the same reason (with
more detail where it helps, such as why its ``jwks_uri`` could not be fetched) is kept on
the client for its developer to read in the portal.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import orjson
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from flask import current_app
from sqlalchemy import update

from app.extensions import db
from app.timeutil import utcnow
from oauth.audience import token_endpoint_url
from oauth.client_jwk import ASSERTION_ALGORITHMS, ClientKeys, JwksError, parse_jwks
from oauth.endpoint_request import EndpointRequest
from oauth.errors import ClientAuthenticationFailed
from oauth.jwks_fetch import JwksFetchError
from oauth.jws import JwsError, b64url_decode
from oauth.models import KEY_AUTH_METHOD, OAuthClient
from oauth.replay import first_use

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LENGTH = 16 * 1024
MAX_LIFETIME_S = 300  # SMART: exp no more than five minutes in the future
CLOCK_SKEW_S = 10
MAX_JTI_LENGTH = 255
CLIENT_ID = re.compile(r"[\x21-\x7e]{1,64}")
# RFC 7523 has no typ; RFC 7523bis names client-authentication+jwt.
ASSERTION_TYPS = (
    "jwt",
    "application/jwt",
    "client-authentication+jwt",
    "application/client-authentication+jwt",
)
FAILURE_RECORD_EVERY = timedelta(seconds=10)


class AssertionRefused(ClientAuthenticationFailed):
    """An assertion failed a check; ``detail`` is the fuller reason kept for the developer."""

    def __init__(self, description: str, detail: str | None = None):
        super().__init__(f"The client assertion was refused: {description}")
        self.detail = detail or description


def _segment_json(segment: str, what: str) -> dict:
    try:
        value = orjson.loads(b64url_decode(segment))
    except (JwsError, orjson.JSONDecodeError):
        raise AssertionRefused(f"its {what} is not base64url-encoded JSON.") from None
    if not isinstance(value, dict):
        raise AssertionRefused(f"its {what} is not a JSON object.")
    return value


def _unverified_parts(assertion: str) -> tuple[dict, dict, bytes, bytes]:
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise AssertionRefused(f"it is longer than {MAX_ASSERTION_LENGTH} characters.")
    parts = assertion.split(".")
    if len(parts) != 3 or not all(parts):
        raise AssertionRefused("it is not a JWT in compact serialization (three base64url parts).")
    header = _segment_json(parts[0], "header")
    payload = _segment_json(parts[1], "payload")
    try:
        signature = b64url_decode(parts[2])
    except JwsError:
        raise AssertionRefused("its signature is not base64url.") from None
    return header, payload, signature, f"{parts[0]}.{parts[1]}".encode("ascii")


def _check_header(header: dict) -> tuple[str, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASSERTION_ALGORITHMS:
        raise AssertionRefused(f"its alg must be one of {', '.join(ASSERTION_ALGORITHMS)}.")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in ASSERTION_TYPS):
        # RFC 8725 §3.11: a JWT of another kind (an access token, say) is not an assertion.
        raise AssertionRefused("its typ header, when present, must be JWT.")
    if "crit" in header:
        raise AssertionRefused("it carries a crit header, which this server does not support.")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise AssertionRefused("its kid header is not a string.")
    return alg, kid


def _check_jku(client: OAuthClient, header: dict) -> None:
    """SMART Backend Services: a ``jku`` header SHALL match the JWK Set URL the client registered.
    The keys come from the registration whatever the header says; one that names another set
    (or any set, for a client that registered its keys inline) is refused, not overlooked."""
    jku = header.get("jku")
    if jku is not None and (not client.jwks_uri or jku != client.jwks_uri):
        raise AssertionRefused("its jku header is not the client's registered jwks_uri.")


def _client_id(payload: dict, form_client_id: str | None) -> str:
    issuer, subject = payload.get("iss"), payload.get("sub")
    if not isinstance(issuer, str) or issuer != subject or not CLIENT_ID.fullmatch(issuer):
        raise AssertionRefused("its iss and sub must both be the client id.")
    if form_client_id and form_client_id != subject:
        raise AssertionRefused("the client_id parameter differs from the assertion's sub.")
    return subject


@lru_cache(maxsize=1024)
def _inline_keys(jwks_json: str) -> ClientKeys:
    return parse_jwks(jwks_json)


def _client_keys(client: OAuthClient, kid: str | None) -> ClientKeys:
    if client.jwks:
        try:
            return _inline_keys(client.jwks)
        except JwksError as error:  # registered before a rule tightened
            raise AssertionRefused("the client's registered key set is not usable.", str(error)) from None
    try:
        cache = current_app.extensions["fhirgate_jwks_cache"]
        owner = (client.client_id, client.generation)
        local_ok = current_app.config["FHIRGATE_JWKS_URI_LOCAL_OK"]
        return cache.keys(owner, client.jwks_uri, local_ok=local_ok, kid=kid)
    except JwksFetchError as error:
        raise AssertionRefused("the client's jwks_uri could not be fetched.", f"{error}.") from None


def _number(payload: dict, claim: str) -> float | None:
    value = payload.get(claim)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AssertionRefused(f"its {claim} is not a NumericDate.")
    return value


def _check_claims(payload: dict) -> tuple[str, float]:
    audience = payload.get("aud")
    if isinstance(audience, list) and len(audience) == 1:
        audience = audience[0]
    # One audience only: a list naming others as well would be usable at them too.
    if audience not in (token_endpoint_url(), current_app.config["FHIRGATE_BASE_URL"]):
        raise AssertionRefused(f"its aud must be the token endpoint URL, {token_endpoint_url()}.")
    now = time.time()
    expires = _number(payload, "exp")
    if expires is None:
        raise AssertionRefused("it has no exp.")
    if expires <= now - CLOCK_SKEW_S:
        raise AssertionRefused("it has expired (exp is in the past).")
    if expires > now + MAX_LIFETIME_S + CLOCK_SKEW_S:
        raise AssertionRefused(f"its exp is more than {MAX_LIFETIME_S // 60} minutes in the future.")
    not_before = _number(payload, "nbf")
    if not_before is not None and not_before > now + CLOCK_SKEW_S:
        raise AssertionRefused("it is not valid yet (nbf is in the future).")
    issued = _number(payload, "iat")
    if issued is not None and issued > now + CLOCK_SKEW_S:
        raise AssertionRefused("its iat is in the future.")
    jti = payload.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise AssertionRefused(f"it has no jti (a unique string of at most {MAX_JTI_LENGTH} characters).")
    return jti, expires


def _verify(client: OAuthClient, parts: tuple[dict, dict, bytes, bytes]) -> None:
    header, payload, signature, signing_input = parts
    alg, kid = _check_header(header)
    _check_jku(client, header)
    key = _client_keys(client, kid).for_header(kid, alg)
    if key is None:
        what = "the assertion's kid" if kid is not None else "an assertion without a kid"
        raise AssertionRefused(f"no key of the client's JWK Set fits {what} and alg.")
    if not key.verify(alg, signature, signing_input):
        raise AssertionRefused("its signature does not verify with the client's key.")
    jti, expires = _check_claims(payload)
    expires_at = datetime.fromtimestamp(expires + CLOCK_SKEW_S, UTC)
    if not first_use(client.client_id, jti, expires_at):
        raise AssertionRefused("its jti was already used: sign a new assertion for every request.")


def _record_failure(client: OAuthClient, reason: str) -> None:
    """Keep the reason for the developer, at most once per ``FAILURE_RECORD_EVERY`` a client:
    anyone can send assertions naming a client id, and each would otherwise cost a write."""
    now = utcnow()
    quiet = OAuthClient.assertion_failure_at.is_(None) | (
        OAuthClient.assertion_failure_at < now - FAILURE_RECORD_EVERY
    )
    db.session.execute(
        update(OAuthClient)
        .where(OAuthClient.client_id == client.client_id, quiet)
        .values(assertion_failure=reason[:300], assertion_failure_at=now)
        .execution_options(synchronize_session=False)  # the request ends with this refusal
    )
    db.session.commit()


def authenticate_private_key_jwt(query_client, request: EndpointRequest) -> OAuthClient | None:
    """Authlib client-auth hook for ``private_key_jwt``."""
    method, form_client_id, _ = request.client_credentials
    if method != KEY_AUTH_METHOD:
        return None
    form = request.form
    if "client_assertion" not in form or "client_assertion_type" not in form:
        raise InvalidRequestError("private_key_jwt needs both client_assertion and client_assertion_type.")
    if form["client_assertion_type"] != ASSERTION_TYPE:
        raise AssertionRefused(f"client_assertion_type must be {ASSERTION_TYPE}.")
    parts = _unverified_parts(form["client_assertion"])
    client = query_client(_client_id(parts[1], form_client_id))
    if client is None or not client.active or not client.check_endpoint_auth_method(KEY_AUTH_METHOD, "token"):
        raise AssertionRefused("no active client registered for private_key_jwt has this iss and sub.")
    try:
        _verify(client, parts)
    except AssertionRefused as refusal:
        _record_failure(client, refusal.detail)
        raise
    return client
