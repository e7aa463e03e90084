"""The operator connects a hospital to an upstream FHIR server (an EHR), or disconnects it.

A connected hospital's FHIR requests go to its upstream with each application's own EHR
credentials (``credentials``); the operator names the upstream's FHIR base URL, how it
authenticates callers (``AUTH_KINDS``), the scope fhirgate asks of it — also the most an
application may hold there — and, optionally, test credentials of the operator's own that any
developer may use in test mode. In production the upstream must be a public https address (the
same guard as a client's ``jwks_uri``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import current_app
from sqlalchemy import delete

from app.extensions import db
from app.integrations.models import (
    API_KEY,
    AUTH_KINDS,
    BACKEND_SERVICES,
    CLIENT_SECRET,
    NEEDED_CREDENTIALS,
    OPTIONAL_CREDENTIALS,
    TEST,
    HospitalUpstream,
    IntegrationCredential,
)
from app.integrations.sealing import seal_test_credentials
from app.models import Hospital
from app.timeutil import utcnow
from oauth import AppGrant, ScopeError, normalize_scope_list
from oauth.jwks_fetch import jwks_uri_problem
from oauth.validity import bump_epoch

DEFAULT_SCOPE = "system/*.rs"
DEFAULT_API_KEY_HEADER = "X-API-Key"
MAX_CREDENTIAL_LENGTH = 16_384  # a 4096-bit RSA key in PEM is ~3,300 characters
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")
# Headers the HTTP layer owns: a key in one of them would break or smuggle the request.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "content-type", "accept", "te", "upgrade"}
)


class UpstreamError(ValueError):
    """The registration is not usable; the message says why, for the operator."""


@dataclass(frozen=True)
class UpstreamSettings:
    base_url: str
    auth_kind: str
    token_url: str | None = None
    api_key_header: str | None = None
    scope: str = DEFAULT_SCOPE
    test_credentials: dict[str, str] | None = None


def url_problem(url: object) -> str | None:
    """What is wrong with an upstream URL, or None: https to a public address in production."""
    local_ok = current_app.config["FHIRGATE_UPSTREAM_LOCAL_OK"]
    if problem := jwks_uri_problem(url, local_ok=local_ok):
        return problem
    if "?" in url:  # type: ignore[operator] - a str once jwks_uri_problem passed it
        return "must not carry a query."
    return None


def credentials_problem(auth_kind: str, credentials: object) -> str | None:
    """What is wrong with EHR credentials for this kind of upstream, or None."""
    needed, optional = NEEDED_CREDENTIALS[auth_kind], OPTIONAL_CREDENTIALS[auth_kind]
    if not isinstance(credentials, dict):
        return f"must be an object with {', '.join(needed)}."
    missing = [name for name in needed if name not in credentials]
    if missing:
        return f"missing {', '.join(missing)} (this EHR needs {', '.join(needed)})."
    unknown = sorted(set(credentials) - set(needed) - set(optional))
    if unknown:
        return f"unknown field(s) {', '.join(unknown)} (this EHR takes {', '.join(needed + optional)})."
    for name, value in credentials.items():
        if not isinstance(value, str) or not 0 < len(value) <= MAX_CREDENTIAL_LENGTH:
            return f"{name} must be a non-empty string of at most {MAX_CREDENTIAL_LENGTH} characters."
        if not value.isascii() or (name != "private_key" and not value.isprintable()):
            return f"{name} must be printable ASCII text."
    if auth_kind == BACKEND_SERVICES:
        return private_key_problem(credentials["private_key"])
    return None


def private_key_problem(pem: str) -> str | None:
    """SMART Backend Services signs with RS384 or ES384: an RSA key (2048 bits or more) or a
    P-384 EC key, in PEM."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        return "private_key must be an unencrypted private key in PEM (PKCS#8 or traditional)."
    if isinstance(key, rsa.RSAPrivateKey):
        return None if key.key_size >= 2048 else "private_key: an RSA key needs at least 2048 bits."
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        return None
    return "private_key must be an RSA key (RS384) or a P-384 EC key (ES384)."


def checked(settings: UpstreamSettings) -> UpstreamSettings:
    """The settings, normalised; raises ``UpstreamError``."""
    if settings.auth_kind not in AUTH_KINDS:
        raise UpstreamError(f"auth_kind must be one of {', '.join(AUTH_KINDS)}.")
    if problem := url_problem(settings.base_url):
        raise UpstreamError(f"base_url {problem}")
    token_url = settings.token_url
    if settings.auth_kind in (BACKEND_SERVICES, CLIENT_SECRET):
        if not token_url:
            raise UpstreamError(f"token_url is needed for {settings.auth_kind} (the EHR's token endpoint).")
        if problem := url_problem(token_url):
            raise UpstreamError(f"token_url {problem}")
    elif token_url:
        raise UpstreamError(
            f"token_url is only for backend_services and client_secret, not {settings.auth_kind}."
        )
    header = settings.api_key_header
    if settings.auth_kind == API_KEY:
        header = header or DEFAULT_API_KEY_HEADER
        if not _HEADER_NAME.fullmatch(header) or header.lower() in _RESERVED_HEADERS:
            raise UpstreamError("api_key_header must be an HTTP header name (not one HTTP itself uses).")
    elif header:
        raise UpstreamError(f"api_key_header is only for api_key, not {settings.auth_kind}.")
    try:
        scope = " ".join(normalize_scope_list(settings.scope.split(), context="system"))
    except ScopeError as error:
        raise UpstreamError(f"scope: {error}") from None
    if settings.test_credentials is not None and (
        problem := credentials_problem(settings.auth_kind, settings.test_credentials)
    ):
        raise UpstreamError(f"test_credentials {problem}")
    return UpstreamSettings(
        settings.base_url.rstrip("/"), settings.auth_kind, token_url, header, scope, settings.test_credentials
    )


def connect_hospital(hospital: Hospital, settings: UpstreamSettings) -> HospitalUpstream:
    """Connect (or re-register) the hospital. A changed upstream, kind or scope ends what
    applications held there: their credentials were for the old one."""
    settings = checked(settings)
    upstream = db.session.get(HospitalUpstream, hospital.id)
    now = utcnow()
    if upstream is None:
        upstream = HospitalUpstream(hospital_id=hospital.id, created_at=now)
        db.session.add(upstream)
    elif (upstream.base_url, upstream.auth_kind, upstream.scope) != (
        settings.base_url,
        settings.auth_kind,
        settings.scope,
    ):
        _end_integrations(hospital.id)
    upstream.base_url = settings.base_url
    upstream.auth_kind = settings.auth_kind
    upstream.token_url = settings.token_url
    upstream.api_key_header = settings.api_key_header
    upstream.scope = settings.scope
    upstream.test_credentials = (
        seal_test_credentials(current_app.config["FHIRGATE_KEK"], hospital.id, settings.test_credentials)
        if settings.test_credentials is not None
        else None
    )
    upstream.updated_at = now
    if upstream.test_credentials is None:
        _end_integrations(hospital.id, mode=TEST)  # they used the test credentials now gone
    bump_epoch()
    db.session.commit()
    return upstream


def disconnect_hospital(hospital: Hospital) -> bool:
    """The hospital is served from the local store again; every application's integration
    with it, and its grant there, ends."""
    upstream = db.session.get(HospitalUpstream, hospital.id)
    if upstream is None:
        return False
    _end_integrations(hospital.id)
    db.session.delete(upstream)
    bump_epoch()
    db.session.commit()
    return True


def _end_integrations(hospital_id: str, mode: str | None = None) -> None:
    """Delete the hospital's integrations (of one mode) and the grants they made."""
    which = [IntegrationCredential.hospital_id == hospital_id]
    if mode is not None:
        which.append(IntegrationCredential.mode == mode)
    switched_on = db.select(IntegrationCredential.client_id).where(*which)
    db.session.execute(
        delete(AppGrant).where(AppGrant.hospital_id == hospital_id, AppGrant.client_id.in_(switched_on))
    )
    db.session.execute(delete(IntegrationCredential).where(*which))


def upstream_of(hospital_id: str) -> HospitalUpstream | None:
    return db.session.get(HospitalUpstream, hospital_id)
