"""The landing page: what this server is and where its endpoints are."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

import fhir.resources
from fhir.version import FHIR_VERSION

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    base = current_app.config["FHIRGATE_BASE_URL"]
    return jsonify(
        name="fhirgate",
        authorization_server_metadata=f"{base}/.well-known/oauth-authorization-server",
        token_endpoint=f"{base}/oauth/token",
        jwks_uri=f"{base}/oauth/jwks",
        management_api=f"{base}/api",
        fhir_version=FHIR_VERSION,
        fhir_resources_version=fhir.resources.__version__,
    )


@bp.get("/healthz")
def health():
    return jsonify(status="ok")
