"""Hospital FHIR base URLs: the ``aud`` of access tokens and the RFC 8707 ``resource``."""

from __future__ import annotations

from flask import current_app


def fhir_base_url(hospital_id: str) -> str:
    return f"{current_app.config['FHIRGATE_BASE_URL']}/fhir/{hospital_id}"


def hospital_for_resource(resource: str) -> str | None:
    """The hospital id whose FHIR base URL is ``resource`` (a trailing slash is ignored)."""
    prefix = f"{current_app.config['FHIRGATE_BASE_URL']}/fhir/"
    resource = resource.rstrip("/")
    if not resource.startswith(prefix):
        return None
    hospital_id = resource[len(prefix) :]
    return hospital_id if hospital_id and "/" not in hospital_id else None


def token_endpoint_url() -> str:
    return f"{current_app.config['FHIRGATE_BASE_URL']}/oauth/token"
