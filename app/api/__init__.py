"""The management JSON API: sessions, hospital API keys, patient credentials, applications."""

from __future__ import annotations

from flask import Blueprint, request

from app.api.cross_site import refuse_cross_site
from app.errors import ApiError

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def _json_bodies_only():
    """Refuse any body that is not JSON, on every route, and any request that changes
    something from another site (``cross_site.py``), body or no body."""
    has_body = request.content_length or request.headers.get("Transfer-Encoding")
    if has_body and request.mimetype != "application/json":
        raise ApiError(415, "Send a JSON body with Content-Type: application/json.")
    refuse_cross_site(request)


from app.api import apps, audit, hospitals, integrations, me, patient_access, session  # noqa: E402,F401  (registers the routes)
