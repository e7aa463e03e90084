"""HTML error pages for the portals, and the headers every portal page gets."""

from __future__ import annotations

from flask import render_template
from werkzeug.exceptions import HTTPException

from app.web import bp


class WebError(Exception):
    """An error shown to a person as a page (status and a sentence to act on)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@bp.errorhandler(WebError)
def _web_error(error: WebError):
    return render_template("web/error.html", status=error.status, message=error.message), error.status


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    message = {404: "There is no such page.", 405: "This page cannot be used that way."}.get(
        error.code or 500, error.description or "The request could not be handled."
    )
    retry_after = [(name, value) for name, value in error.get_headers() if name == "Retry-After"]
    return render_template("web/error.html", status=error.code, message=message), error.code, retry_after


@bp.after_request
def _no_caching(response):
    # Pages show personal data and one-time secrets: never store them, never show them from history.
    response.headers["Cache-Control"] = "no-store"
    return response
