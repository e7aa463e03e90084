"""A WSGI middleware that answers one kind of common request beneath Flask.

Subclasses say which requests they look at (``takes``) and answer them (``answer``): a
``(body, headers)`` 200 (or ``(body, headers, status)``), or None to leave the request to the
Flask app, untouched. So does any unexpected failure (logged by its type only): the view then
decides, renders and logs.
"""

from __future__ import annotations

import logging

from flask import Flask

from app.headers import ALWAYS, HSTS

log = logging.getLogger(__name__)


class FastPath:
    name = "fast path"

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app  # the next layer (another fast path or Flask's own)

    def takes(self, environ) -> bool:
        raise NotImplementedError

    def answer(self, environ) -> tuple[bytes, list[tuple[str, str]]] | None:
        raise NotImplementedError

    def __call__(self, environ, start_response):
        if self.takes(environ):
            try:
                answered = self.answer(environ)
            except Exception as error:  # noqa: BLE001 - whatever broke, the view answers (and logs it)
                log.warning("%s gave way (%s)", self.name, type(error).__name__)
                answered = None
            if answered is not None:
                body, headers, *status = answered
                start_response(status[0] if status else "200 OK", with_security_headers(environ, headers))
                return [body]
        return self.wsgi_app(environ, start_response)


def with_security_headers(environ, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers ``app.headers.add_security_headers`` gives every non-HTML response."""
    headers = [*headers, *ALWAYS.items()]
    if environ.get("wsgi.url_scheme") == "https":
        headers.append(HSTS)
    return headers
