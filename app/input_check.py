"""Refuse, once for every request, input that no column may store: NUL (and its kin).

PostgreSQL's text types cannot hold U+0000, and a lone surrogate cannot be encoded for it: either
one reaching a query is a 500. So before any view, every value a request brings is checked here:
the path, every query parameter's name and value (each repeated one too), every form field, and
every header. The URL may hold no control character at all (C0, which a URL never needs); form
fields and headers no NUL. A refusal is a 400 in the surface's own error family (``app.errors``:
RFC 6749 JSON under /oauth, an OperationOutcome under /fhir, ``{"error","message"}`` under /api,
the HTML error page on the portals).

Values decoded later from inside a request (a Bundle entry's URL, conditional criteria, a SMART
scope's search restriction) are checked where they are decoded: ``fhir.search.request`` and
``oauth.scopes``. JSON bodies are checked by their parsers (``fhir.http``, ``app.api.body``).
"""

from __future__ import annotations

import re

from flask import Flask, request
from werkzeug.exceptions import BadRequest

from app.unstorable import URL_UNSTORABLE, VALUE_UNSTORABLE
from oauth.endpoint_request import MAX_BODY_BYTES as TOKEN_BODY_BYTES

# In a raw (still percent-encoded) query: a control character, or its percent-encoding, or the
# UTF-8 lead bytes of a surrogate (ED A0-BF).
_RAW_SUSPECT = re.compile(r"[\x00-\x1f]|%[01][0-9A-Fa-f]|%[Ee][Dd]%[AaBb][0-9A-Fa-f]")
_CONTENT_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
MESSAGE = "The request holds a NUL or other control characters, which cannot be stored: remove them."


def init_input_check(app: Flask) -> None:
    app.before_request(refuse_unstorable_input)


def refuse_unstorable_input() -> None:
    """``before_request``: 400 when the path, a query parameter, a form field or a header holds
    what cannot be stored."""
    if URL_UNSTORABLE.search(request.path):
        raise BadRequest(MESSAGE)
    environ = request.environ
    # Decoding the query costs more than the rest of this check: only a raw query that could
    # decode to a control character (or a surrogate's UTF-8 lead) is decoded and looked at.
    if _RAW_SUSPECT.search(environ.get("QUERY_STRING", "")):
        for key, value in request.args.items(multi=True):
            if URL_UNSTORABLE.search(key) or URL_UNSTORABLE.search(value):
                raise BadRequest(MESSAGE)
    # WSGI header values are Latin-1 text: a NUL is all they can hold that a column cannot.
    for key, value in environ.items():
        if (key.startswith("HTTP_") or key in _CONTENT_HEADERS) and "\x00" in value:
            raise BadRequest(MESSAGE)
    if request.mimetype in _FORMS:
        if request.path.startswith("/oauth/"):
            request.max_content_length = TOKEN_BODY_BYTES  # the OAuth endpoints' own limit, first
        for key, value in request.form.items(multi=True):
            if VALUE_UNSTORABLE.search(key) or VALUE_UNSTORABLE.search(value):
                raise BadRequest(MESSAGE)
