"""Extract the search index values of a resource; FHIR R4B search.html.

Each resource type gets a plan, built once: its indexed parameters with every expression
compiled (``fhir.search.index_paths``). ``extract`` runs the plan and converts what each
expression finds into rows per parameter type (``fhir.search.index_values``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from fhir.search import index_values as v
from fhir.search.composites import composite_plan
from fhir.search.index_paths import Evaluator, Found, compile_part
from fhir.search.registry import (
    SearchParam,
    indexed_params,
    is_identifier_param,
    patient_compartment_params,
    split_union,
    storage,
    stored_under,
)

logger = logging.getLogger(__name__)


@dataclass
class IndexValues:
    """Everything a resource is indexed under, one list per search parameter type."""

    # (param, normalized, exact); both at most index_values.STRING_MAX characters
    strings: list[tuple[str, str, str]] = field(default_factory=list)
    # (param, system, code, text); text is normalized like a string, for :text
    tokens: list[tuple[str, str | None, str | None, str | None]] = field(default_factory=list)
    # (param, target_type, target_id, reference); "Type/id" when parsed, else the canonical/url
    references: list[tuple[str, str | None, str | None, str]] = field(default_factory=list)
    # (param, low, high): UTC, low inclusive, high exclusive
    dates: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    # (param, low, high) from the implicit precision
    numbers: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    # (param, low, high, system, code, unit)
    quantities: list[tuple[str, Decimal, Decimal, str | None, str | None, str | None]] = field(
        default_factory=list
    )
    uris: list[tuple[str, str]] = field(default_factory=list)
    # (param, system, code, value_system, value_code, value_unit, value_number, value_low,
    # value_high, value_string): composite parameters, see fhir.search.composites
    composites: list[tuple] = field(default_factory=list)
    # ids of the Patients whose compartment holds this resource (a Patient's own id included)
    compartment_patients: set[str] = field(default_factory=set)


def _strings(code: str, found: Found, out: IndexValues) -> None:
    rows = {}
    for value, _ in found:
        for text in v.string_values(value):
            if normalized := v.normalize_string(text):
                rows[(code, normalized, text[: v.STRING_MAX])] = None
    out.strings.extend(rows)


def _tokens(code: str, found: Found, out: IndexValues) -> None:
    out.tokens.extend(
        dict.fromkeys((code, *row) for value, hint in found for row in v.token_values(value, hint))
    )


def _identifier_tokens(code: str, found: Found, out: IndexValues) -> None:
    """An Identifier parameter's rows, and for ``:of-type`` (search.html#token) its type
    codings under ``code:of-type``, with the identifier's value in ``text``."""
    _tokens(code, found, out)
    of_type = f"{code}:of-type"
    out.tokens.extend(
        dict.fromkeys(
            (of_type, system, type_code, identifier)
            for value, _ in found
            for system, type_code, identifier in v.identifier_types(value)
        )
    )


def _references(code: str, found: Found, out: IndexValues) -> None:
    out.references.extend(
        dict.fromkeys((code, *row) for value, _ in found for row in v.reference_values(value))
    )
    # :identifier (search.html#reference): a Reference's identifier, with its ``type`` in ``text``
    identified = [value for value, _ in found if isinstance(value, dict) and "identifier" in value]
    if identified:
        by_identifier = f"{code}:identifier"
        out.tokens.extend(
            dict.fromkeys(
                (by_identifier, *row) for value in identified for row in v.reference_identifiers(value)
            )
        )


def _dates(code: str, found: Found, out: IndexValues) -> None:
    out.dates.extend(dict.fromkeys((code, *row) for value, _ in found for row in v.date_ranges(value)))


def _numbers(code: str, found: Found, out: IndexValues) -> None:
    out.numbers.extend(dict.fromkeys((code, *row) for value, _ in found for row in v.number_ranges(value)))


def _quantities(code: str, found: Found, out: IndexValues) -> None:
    out.quantities.extend(
        dict.fromkeys((code, *row) for value, _ in found for row in v.quantity_values(value))
    )


def _uris(code: str, found: Found, out: IndexValues) -> None:
    out.uris.extend(dict.fromkeys((code, uri) for value, _ in found for uri in v.uri_values(value)))


CONVERTERS: dict[str, Callable[[str, Found, IndexValues], None]] = {
    "string": _strings,
    "token": _tokens,
    "reference": _references,
    "date": _dates,
    "number": _numbers,
    "quantity": _quantities,
    "uri": _uris,
}

_reported: set[str] = set()


def _report_once(param: SearchParam, what: str, detail: str) -> None:
    if param.url not in _reported:
        _reported.add(param.url)
        logger.debug("search parameter %s (%s): %s skipped: %s", param.url, param.resource_type, what, detail)


@dataclass(frozen=True)
class Step:
    """One indexed parameter of a plan: its compiled union parts and its converter."""

    param: SearchParam
    parts: tuple[Evaluator, ...]
    fast: tuple[bool, ...]
    convert: Callable[[str, Found, IndexValues], None]


@cache
def plan(resource_type: str) -> tuple[Step, ...]:
    """Compile the indexed parameters of ``resource_type``; a part that will not compile is left out."""
    steps = []
    stores = storage(resource_type)
    for param in indexed_params(resource_type).values():
        if stores[param.code].codes != (param.code,):
            continue  # its rows are those of the parameters it repeats
        parts, fast = [], []
        for part in split_union(param.expression):
            try:
                evaluator, is_fast = compile_part(part, resource_type)
            except Exception as exc:  # a broken spec expression must not stop indexing
                _report_once(param, "compile", str(exc)[:300])
                continue
            parts.append(evaluator)
            fast.append(is_fast)
        if parts:
            convert = _identifier_tokens if is_identifier_param(param) else CONVERTERS[param.type]
            steps.append(Step(param, tuple(parts), tuple(fast), convert))
    return tuple(steps)


@cache
def _compartment_codes(resource_type: str) -> frozenset[str]:
    """The codes whose Patient references put a resource in that Patient's compartment."""
    codes = set()
    for code in patient_compartment_params(resource_type):
        stored = stored_under(resource_type, code)
        if stored.target_type in (None, "Patient"):
            codes.update(stored.codes)
    return frozenset(codes)


def extract(resource: dict[str, Any]) -> IndexValues:
    """Return every index value of ``resource`` (JSON as received, validated R4B).

    Never raises: an expression that fails on this resource is skipped (logged once).
    """
    out = IndexValues()
    resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(resource_type, str):
        return out
    for step in plan(resource_type):
        try:
            found: Found = []
            for evaluate in step.parts:
                found.extend(evaluate(resource))
            if found:
                step.convert(step.param.code, found, out)
        except Exception as exc:  # fhirpathpy on odd input, or a shape nobody foresaw
            _report_once(step.param, "evaluation", type(exc).__name__)
    for composite in composite_plan(resource_type):
        try:
            out.composites.extend(dict.fromkeys(composite.rows(resource)))
        except Exception as exc:  # fhirpathpy on odd input
            _report_once(composite.param, "evaluation", type(exc).__name__)
    codes = _compartment_codes(resource_type)
    if codes:
        out.compartment_patients.update(
            target_id
            for code, target_type, target_id, _ in out.references
            if target_type == "Patient" and target_id and code in codes
        )
    if resource_type == "Patient" and isinstance(resource.get("id"), str) and resource["id"]:
        out.compartment_patients.add(resource["id"])
    return out
