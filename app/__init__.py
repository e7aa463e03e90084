"""fhirgate: the Flask application that wires the OAuth server and the FHIR server together.

The project root must come first on ``sys.path`` so that our ``fhir`` package (which
extends its path to reach ``fhir.resources``) is the one imported, also when the
``fhirgate`` console script runs from its own bin directory.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if sys.path[0] != _ROOT:
    sys.path.insert(0, _ROOT)
if "fhir" in sys.modules and not any(
    p.startswith(_ROOT) for p in getattr(sys.modules["fhir"], "__path__", [])
):
    del sys.modules["fhir"]  # the site-packages copy was imported first; use ours


def create_app(*args, **kwargs):
    """Build the application (see ``app.factory.create_app``).

    Imported lazily so that ``import oauth`` (which uses ``app.extensions``) works
    without pulling the whole application in first.
    """
    from app.factory import create_app as factory

    return factory(*args, **kwargs)


__all__ = ["create_app"]
