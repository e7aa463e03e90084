"""The management JSON API: sessions, hospital API keys, patient credentials, applications."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from app.api import apps, hospitals, me, session  # noqa: E402,F401  (registers the routes)
