"""FHIR R4B datatype builders for the sandbox: plain dicts, built fresh for every resource.

Nothing is shared between resources, so a consumer that rewrites a reference or a coding in
place (as transaction processing does) cannot change another resource by accident.
"""

from __future__ import annotations

from typing import Any

from fhir.sandbox.terminology import UCUM, Term


def coding(term: Term) -> dict[str, str]:
    """Build a Coding from a ``(system, code, display)`` term."""
    system, code, display = term
    return {"system": system, "code": code, "display": display}


def concept(term: Term, text: str | None = None) -> dict[str, Any]:
    """Build a CodeableConcept with one coding, its text defaulting to the display."""
    return {"coding": [coding(term)], "text": text or term[2]}


def reference(type_: str, id_: str, display: str | None = None) -> dict[str, str]:
    """Build a relative literal Reference ``Type/id`` (FHIR R4B references.html#literal)."""
    ref = {"reference": f"{type_}/{id_}"}
    if display:
        ref["display"] = display
    return ref


def quantity(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    """Build a UCUM Quantity; ``unit`` is the human form, ``code`` the UCUM code when they differ."""
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}
