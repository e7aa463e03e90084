"""Every request that changes something through the management API must show it is not
cross-site (OWASP CSRF Prevention Cheat Sheet: Fetch Metadata, Origin verification, and a
content type a form cannot send).

The session cookie is ``SameSite=Lax``, which keeps it off other sites' POSTs in today's
browsers, but not off a sibling subdomain's (same site, another origin) nor off browsers that
ignore the attribute. So a POST, PUT, PATCH or DELETE under ``/api`` is refused:

* with a ``Content-Type`` that is not JSON, body or no body (415): an HTML form always sends
  one of its three types, even empty, and another site's page may send JSON only after a
  CORS preflight, which this server never grants;
* when the browser says where it comes from and that is not here (403): ``Sec-Fetch-Site``
  (W3C Fetch Metadata) other than ``same-origin`` or ``none``, or an ``Origin`` (RFC 6454 §7;
  browsers send it with every request but GET and HEAD) other than this server's own —
  the origin of ``FHIRGATE_BASE_URL`` or of the URL the request was sent to.

curl, scripts and client libraries send neither header and no form type, so they go on as
before; they carry a person's session cookie only if that person put it there.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Request, current_app

from app.errors import ApiError

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_THIS_SITE = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an absolute http(s) URL (RFC 6454 §4), else None."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:  # a port that is not a number, brackets that do not close
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def refuse_cross_site(request: Request) -> None:
    """Raise a 415 or 403 ``ApiError`` unless a state-changing request shows it is not cross-site."""
    if request.method not in STATE_CHANGING:
        return
    if request.headers.get("Content-Type") and request.mimetype != "application/json":
        raise ApiError(415, "Send a JSON body with Content-Type: application/json, or no Content-Type.")
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.strip().lower() not in _THIS_SITE:
        raise ApiError(403, "This request came from another site; the API refuses those.")
    origin = request.headers.get("Origin")
    if origin is not None:
        ours = {origin_of(current_app.config["FHIRGATE_BASE_URL"]), origin_of(request.host_url)}
        sent = origin_of(origin)  # "null" (a sandboxed frame, a redirect) has none
        if sent is None or sent not in ours:
            raise ApiError(403, "This request came from another site; the API refuses those.")
