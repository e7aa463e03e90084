"""The permission grid of the portals: resource types × interactions, read as SMART v2 scopes."""

from __future__ import annotations

# The grid's rows: the types integrations ask for most, and "*" for every type.
GRID_TYPES = (
    "*", "Patient", "Observation", "Condition", "Encounter", "MedicationRequest", "AllergyIntolerance",
    "Immunization", "Procedure", "DiagnosticReport", "DocumentReference", "Practitioner", "Organization",
)  # fmt: skip
# The grid's columns, in SMART v2 letter order (c r u d s).
INTERACTIONS = (("create", "c"), ("read", "r"), ("update", "u"), ("delete", "d"), ("search", "s"))


def permissions_from_grid(form) -> list[str]:
    """``perm:Patient:r`` boxes → ``system/Patient.rs`` scopes, letters in c r u d s order."""
    scopes = []
    for resource_type in GRID_TYPES:
        letters = "".join(letter for _, letter in INTERACTIONS if form.get(f"perm:{resource_type}:{letter}"))
        if letters:
            scopes.append(f"system/{resource_type}.{letters}")
    return scopes


def grid(checked=None) -> dict:
    """What ``web/_grid.html`` needs; ``checked`` holds the ticked boxes (a submitted form)."""
    return {"types": GRID_TYPES, "interactions": INTERACTIONS, "checked": checked or {}}
