"""Helpers for the portals: read CSRF tokens and hidden fields from pages as a browser would."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD


def hidden(page: bytes | str, name: str) -> str:
    text = page.decode() if isinstance(page, bytes) else page
    match = re.search(rf'name="{name}" value="([^"]*)"', text)
    assert match, f"no hidden {name} field on the page"
    return match.group(1)


@pytest.fixture
def browser_login(app):
    """Log ``email`` in through the login form; returns the test client (a cookie jar)."""

    def login(email: str):
        client = app.test_client()
        form = client.get("/login")
        response = client.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": hidden(form.data, "csrf_token")},
        )
        assert response.status_code == 303, response.data[:500]
        return client

    return login
