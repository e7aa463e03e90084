"""Security headers on every response.

``X-Frame-Options: DENY`` repeats the CSP's ``frame-ancestors 'none'`` for browsers that know
only the older header (RFC 7034). It goes on every response, not only HTML: a JSON or FHIR
body in a frame offers nothing to click, but one rule is simpler to keep than a list of
types, and the fast paths (``app/fast_path.py``) send the same ``ALWAYS`` headers.
"""

from __future__ import annotations

from flask import Response, request

CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
ALWAYS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    for name, value in ALWAYS.items():
        headers.setdefault(name, value)
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CSP)
    if request.is_secure:
        headers.setdefault(*HSTS)
    return response
