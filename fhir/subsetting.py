"""``_summary`` and ``_elements`` (FHIR R4B search.html#summary, #elements) on reads and searches.

Which elements are summary elements and which are mandatory comes from the R4B definitions as
``fhir.resources`` carries them (``summary_element_property``, a required field). Both work on
a resource's top-level elements, where a resource's summary is defined; a data type inside is
kept whole. Every subset is tagged ``SUBSETTED``, so that no client mistakes it for the whole
resource (and stores it back).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from fhir import exact_json
from fhir.errors import FhirError
from fhir.model_classes import model_class
from fhir.storage.repository import StoredResource

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
SUMMARY_MODES = ("true", "text", "data", "count", "false")
_ALWAYS = frozenset({"resourceType", "id", "meta"})


@dataclass(frozen=True)
class _Elements:
    all: frozenset[str]  # JSON names of every top-level element (choice types: each variant)
    summary: frozenset[str]
    mandatory: frozenset[str]
    choices: dict[str, frozenset[str]]  # value -> {valueQuantity, valueString, ...}


@cache
def _elements(resource_type: str) -> _Elements:
    every, summary, mandatory, choices = set(), set(), set(), {}
    for name, field in model_class(resource_type).model_fields.items():
        extra = field.json_schema_extra or {}
        if not isinstance(extra, dict) or not extra.get("element_property"):
            continue
        json_name = field.alias or name
        every.add(json_name)
        if extra.get("summary_element_property"):
            summary.add(json_name)
        if field.is_required() or extra.get("element_required") or extra.get("one_of_many_required"):
            mandatory.add(json_name)
        if group := extra.get("one_of_many"):
            choices.setdefault(group, set()).add(json_name)
    return _Elements(
        frozenset(every),
        frozenset(summary),
        frozenset(mandatory),
        {group: frozenset(names) for group, names in choices.items()},
    )


def summary_mode(raw: str) -> str:
    if raw not in SUMMARY_MODES:
        raise FhirError.invalid(f"_summary takes {', '.join(SUMMARY_MODES)}; got {raw[:40]!r}.")
    return raw


def element_names(resource_type: str, raw_values: list[str]) -> tuple[str, ...]:
    """The element names of ``_elements`` values (``name`` or ``Type.name``; a choice by its
    stem, ``value``), each one the type has: an unknown name would silently match nothing."""
    known = _elements(resource_type)
    names = []
    for raw in raw_values:
        for item in raw.split(","):
            name = item.strip().removeprefix(f"{resource_type}.")
            if not name:
                continue
            if name not in known.all and name not in known.choices and name not in _ALWAYS:
                raise FhirError.invalid(f"_elements: {resource_type} has no element {name[:60]!r}.")
            names.append(name)
    return tuple(dict.fromkeys(names))


def _kept(resource_type: str, summary: str | None, elements: tuple[str, ...]) -> frozenset[str] | None:
    """The top-level JSON names to keep, or None to keep everything."""
    known = _elements(resource_type)
    if elements:
        wanted = set(elements)
    elif summary == "true":
        wanted = set(known.summary)
    elif summary == "text":
        wanted = {"text"}
    elif summary == "data":
        return known.all - {"text"} | _ALWAYS
    else:
        return None
    wanted |= known.mandatory | _ALWAYS
    for stem, variants in known.choices.items():
        if stem in wanted:
            wanted |= variants
    return frozenset(wanted)


def subset(resource: dict, summary: str | None, elements: tuple[str, ...]) -> dict:
    """The resource as ``_summary``/``_elements`` ask, tagged SUBSETTED when anything is left
    out (a primitive's ``_name`` extension sibling goes with it)."""
    keep = _kept(resource["resourceType"], summary, elements)
    if keep is None:
        return resource
    kept = {key: value for key, value in resource.items() if key in keep or key.removeprefix("_") in keep}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return kept


def subset_stored(stored: StoredResource, summary: str | None, elements: tuple[str, ...]) -> StoredResource:
    if stored.content is None or _kept(stored.resource_type, summary, elements) is None:
        return stored
    content = exact_json.dumps(subset(exact_json.loads(stored.content), summary, elements)).decode()
    return StoredResource(
        stored.resource_type, stored.id, stored.version_id, stored.last_updated, stored.deleted, content
    )


_READ_TRANSPORT = frozenset({"_format", "_pretty"})


def read_subset(resource_type: str, args: list[tuple[str, str]], *, lenient: bool):
    """``(summary, elements)`` of a read's query (http.html#read takes ``_summary`` and
    ``_elements``); any other parameter is refused, or ignored under lenient handling."""
    summary, elements = None, ()
    for name, raw in args:
        if name in _READ_TRANSPORT:
            continue
        if name == "_summary":
            if summary_mode(raw) == "count":
                raise FhirError.invalid("_summary=count is for searches; a read returns one resource.")
            summary = raw
        elif name == "_elements":
            elements = element_names(resource_type, [raw])
        elif not lenient:
            raise FhirError.invalid(
                f"A read takes _summary and _elements only; {name[:60]!r}={raw[:40]!r} is not."
            )
    return (summary if summary != "false" else None), elements
