"""SMART scopes in the plain words a patient reads on the consent page."""

from __future__ import annotations

from oauth import SmartScope

_TYPES = {
    "*": "your whole health record",
    "Patient": "your name, birth date and contact details",
    "Observation": "your lab results, vital signs and other measurements",
    "Condition": "your conditions and diagnoses",
    "AllergyIntolerance": "your allergies",
    "MedicationRequest": "your prescriptions",
    "MedicationStatement": "the medicines you take",
    "MedicationDispense": "the medicines dispensed to you",
    "Medication": "the medicines named in your record",
    "Immunization": "your vaccinations",
    "Procedure": "your procedures and operations",
    "Encounter": "your visits and hospital stays",
    "DiagnosticReport": "your test and imaging reports",
    "DocumentReference": "your clinical documents and notes",
    "CarePlan": "your care plans",
    "CareTeam": "your care team",
    "Goal": "your health goals",
    "Coverage": "your insurance coverage",
    "Device": "your implants and devices",
    "Practitioner": "the clinicians named in your record",
    "PractitionerRole": "the roles of the clinicians named in your record",
    "Organization": "the organisations named in your record",
    "Location": "the places named in your record",
    "Provenance": "who recorded each part of your record",
}
_CATEGORIES = {
    "laboratory": "your lab results",
    "vital-signs": "your vital signs",
    "social-history": "your social history",
    "imaging": "your imaging results",
    "survey": "your survey answers",
    "problem-list-item": "your problem list",
    "encounter-diagnosis": "the diagnoses of your visits",
    "health-concern": "your health concerns",
}


def scope_in_words(text: str, *, rest: bool = False, staff: bool = False) -> str:
    """A scope as the consent page says it: Read your lab results, Read and change your
    prescriptions ... ``rest``: a wildcard offered after its featured types, so it means
    everything else in the record. ``staff``: said to the clinician of an EHR launch."""
    scope = SmartScope.parse(text)
    verbs = []
    if scope.permissions & {"r", "s"}:
        verbs.append("read")
    if "c" in scope.permissions:
        verbs.append("add to")
    if "u" in scope.permissions:
        verbs.append("change")
    if "d" in scope.permissions:
        verbs.append("delete")
    verb = verbs[0] if len(verbs) == 1 else ", ".join(verbs[:-1]) + " and " + verbs[-1]
    what = _TYPES.get(scope.resource_type, f"your {scope.resource_type} records")
    if rest:
        what = "everything else in your record"
    if scope.context == "user":  # a clinician's: what their role shows them at the hospital
        what = (
            "every record you can see at this hospital"
            if scope.resource_type == "*"
            else f"the {scope.resource_type} records you can see at this hospital"
        )
    elif staff:  # patient/ scopes in a clinician's EHR launch: the launched patient's
        what = what.replace("your ", "the patient's ")
    categories = [value.rpartition("|")[2] for name, value in scope.query if name == "category"]
    if len(scope.query) == 1 and len(categories) == 1 and categories[0] in _CATEGORIES:
        what = _CATEGORIES[categories[0]]
    elif scope.query:
        what += " (only " + ", ".join(f"{name}={value}" for name, value in sorted(scope.query)) + ")"
    return f"{verb[0].upper()}{verb[1:]} {what}"


def access_in_words(scopes: list[str], types: tuple[str, ...]) -> list[str]:
    """A grant's resource scopes for a list a person reads: a wildcard with some kinds kept back
    (granted as one scope per other type) reads "Read everything in your record except ..."."""
    groups: dict[str, list[str]] = {}
    for text in scopes:
        scope = SmartScope.parse(text)
        if scope.context == "patient" and not scope.query and scope.resource_type != "*":
            groups.setdefault(text.partition(".")[2], []).append(scope.resource_type)
    summarised = {
        permission: listed for permission, listed in groups.items() if len(listed) > len(types) // 2
    }
    lines = []
    for permission, listed in summarised.items():
        missing = [name for name in types if name not in listed]
        whole = scope_in_words(f"patient/*.{permission}")
        kept_back = ", ".join(_TYPES.get(name, f"your {name} records") for name in missing)
        lines.append(
            whole.replace("your whole health record", "everything in your record except " + kept_back)
        )
    for text in scopes:
        permission = text.partition(".")[2]
        if permission in summarised and text.startswith("patient/") and "?" not in text:
            continue
        lines.append(scope_in_words(text))
    return lines
