"""Fixtures of the token endpoint's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def view_calls(app, monkeypatch) -> list[None]:
    """One entry per request the Flask token view answered (not a fast path)."""
    calls = []
    view = app.view_functions["oauth.token"]

    def counted():
        calls.append(None)
        return view()

    monkeypatch.setitem(app.view_functions, "oauth.token", counted)
    return calls
