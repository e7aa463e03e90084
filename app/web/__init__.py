"""The web portals: server-rendered pages over the same accounts and credentials as the API.

Every page is plain HTML with labelled fields; every form carries a CSRF token (``csrf.py``);
JavaScript only adds copy buttons. Errors on these pages are HTML pages (``pages.py``).
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "web", __name__, template_folder="templates", static_folder="static", static_url_path="/web-static"
)

from app.web import (  # noqa: E402,F401  (registers the routes and hooks)
    admin,
    admin_patients,
    auth,
    authorize,
    connected_apps,
    csrf,
    developer,
    ehr,
    integrations,
    pages,
    patient,
)
