"""From a request's bearer token to a repository scoped to what the caller may see."""

from __future__ import annotations

from flask import g, request

from app.direct_reads import direct_reads
from app.extensions import db
from fhir.errors import FhirError, Issue
from fhir.http import base_url
from fhir.policy import AccessPolicy
from fhir.scoped import ScopedRepository
from fhir.storage.sql import SqlRepository
from oauth import InvalidTokenError, Principal, authenticate_bearer


def _unauthorized(message: str, presented: bool) -> FhirError:
    """RFC 6750 §3.1: ``invalid_token`` only when a token came; a request with no credential
    at all gets the bare challenge, which tells it how to authenticate."""
    challenge = 'Bearer realm="fhirgate"'
    if presented:
        challenge += f', error="invalid_token", error_description="{message}"'
    return FhirError(401, [Issue("login", message)], {"WWW-Authenticate": challenge})


def current_principal(hospital_id: str) -> Principal:
    """The verified caller; 401 with an RFC 6750 challenge otherwise."""
    principal = g.get("fhir_principal")
    if principal is None:
        try:
            principal = authenticate_bearer(
                request.headers.get("Authorization"),
                hospital_id,
                api_key=request.headers.get("x-api-key"),
                api_secret=request.headers.get("x-api-secret"),
            )
        except InvalidTokenError as error:
            presented = bool(request.headers.get("Authorization") or request.headers.get("x-api-key"))
            raise _unauthorized(str(error), presented) from None
        g.fhir_principal = principal
    return principal


def repository_for(principal: Principal, *, committed_only: bool = False) -> ScopedRepository:
    """The hospital's store as the caller may see it: its scopes, its patient compartment.

    ``committed_only``: the request reads and writes nothing else (a GET read), so the
    current row may come over a direct connection (``app.direct_reads``).
    """
    reads = direct_reads()
    inner = SqlRepository(
        db.session,
        principal.hospital_id,
        client_id=principal.client_id,
        base_url=base_url(principal.hospital_id),
        direct=reads if committed_only and reads.available else None,
    )
    return ScopedRepository(inner, AccessPolicy(principal))
