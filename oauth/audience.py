"""Hospital FHIR base URLs: the ``aud`` of access tokens and the RFC 8707 ``resource``."""

from __future__ import annotations

from flask import current_app


def fhir_base_url(hospital_id: str, base_url: str | None = None) -> str:
    """``base_url`` defaults to the app's ``FHIRGATE_BASE_URL`` (callers outside an
    application context pass it), as in ``hospital_for_resource``."""
    return f"{current_app.config['FHIRGATE_BASE_URL'] if base_url is None else base_url}/fhir/{hospital_id}"


def hospital_for_resource(resource: str, base_url: str | None = None) -> str | None:
    """The hospital id whose FHIR base URL is ``resource`` (a trailing slash is ignored)."""
    prefix = fhir_base_url("", base_url)
    resource = resource.rstrip("/")
    if not resource.startswith(prefix):
        return None
    hospital_id = resource[len(prefix) :]
    return hospital_id if hospital_id and "/" not in hospital_id else None


def token_endpoint_url() -> str:
    return f"{current_app.config['FHIRGATE_BASE_URL']}/oauth/token"
