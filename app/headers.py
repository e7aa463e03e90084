"""Security headers on every response.

``X-Frame-Options: DENY`` repeats the CSP's ``frame-ancestors 'none'`` for browsers that know
only the older header (RFC 7034). It goes on every response, not only HTML: a JSON or FHIR
body in a frame offers nothing to click, but one rule is simpler to keep than a list of
types, and the fast paths (``app/fast_path.py``) send the same ``ALWAYS`` headers.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

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


# A host (a name, IPv4 or bracketed IPv6) and port: nothing that could end a CSP source expression.
_PLAIN_NETLOC = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def csp_sending_forms_to(uris) -> str:
    """The CSP with ``form-action`` naming also the origins of ``uris``: a form whose answer
    redirects to another site (the consent decision to the app, an EHR launch to the app's launch
    URL) is governed by ``form-action`` in that redirect too."""
    origins = []
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme in ("https", "http") and _PLAIN_NETLOC.fullmatch(parts.netloc):
            origins.append(f"{parts.scheme}://{parts.netloc}")
    targets = " ".join(["'self'", *dict.fromkeys(origins)])
    return CSP.replace("form-action 'self'", f"form-action {targets}")
