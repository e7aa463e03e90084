"""The search registry and extractor need no database and no Flask app."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _clean_tables():
    """Override the suite-wide table cleaner, so these tests never build the app."""
    yield
