"""The FHIR specification's search parameters and patient compartment, per resource type.

Built from ``fhir/definitions`` (HL7 FHIR 4.3.0 (R4B) SearchParameter resources, see its README);
FHIR R4B search.html#params and compartmentdefinition-patient.html.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any

CANONICAL_BASE = "http://hl7.org/fhir/SearchParameter/"
COMMON_BASES = ("Resource", "DomainResource")
INDEXED_TYPES = frozenset({"string", "token", "reference", "date", "number", "quantity", "uri"})
# Storage answers these from its own columns, so the extractor does not index them.
STORED_COLUMNS = frozenset({"_id", "_lastUpdated"})


@dataclass(frozen=True)
class SearchParam:
    """One search parameter as it applies to one resource type."""

    code: str  # "subject"
    type: str  # string|token|reference|date|number|quantity|uri|composite|special
    resource_type: str  # the type this entry applies to
    expression: str  # only the part of the FHIRPath union that applies to resource_type
    targets: tuple[str, ...]  # reference target types
    url: str
    # composite parameters: (type, expression relative to each element ``expression`` finds,
    # code of the parameter it stands for)
    components: tuple[tuple[str, str, str], ...] = ()


def split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression on the top-level ``|`` (not inside brackets or quotes)."""
    parts: list[str] = []
    depth = 0
    quote = escaped = False
    start = 0
    for i, char in enumerate(expression):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "'":
                quote = False
        elif char == "'":
            quote = True
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(expression[start:i].strip())
            start = i + 1
    parts.append(expression[start:].strip())
    return [p for p in parts if p]


def _root(part: str) -> tuple[int, str]:
    """Return where the leading identifier of ``part`` starts (after any parentheses) and it."""
    lead = len(part) - len(part.lstrip("( "))
    end = lead
    while end < len(part) and (part[end].isalnum() or part[end] == "_"):
        end += 1
    return lead, part[lead:end]


def expression_for(expression: str, resource_type: str) -> str:
    """Keep the parts of a union that apply to ``resource_type``, rooted at that type.

    Parts rooted at ``Resource``/``DomainResource`` apply to every type; the spec also has a
    few unrooted parts (``InsurancePlan-name`` is ``name | alias``) that apply to the base.
    Both are rewritten to start at ``resource_type``, so the part evaluates as it stands.
    """
    kept = []
    for part in split_union(expression):
        lead, root = _root(part)
        if root == resource_type:
            kept.append(part)
        elif root in COMMON_BASES:
            kept.append(part[:lead] + resource_type + part[lead + len(root) :])
        elif root[:1].islower():
            kept.append(f"{part[:lead]}{resource_type}.{part[lead:]}")
    return " | ".join(kept)


def _read(name: str) -> Any:
    return json.loads(files("fhir.definitions").joinpath(name).read_text("utf-8"))


@cache
def _definitions() -> tuple[tuple[dict[str, Any], ...], tuple[str, ...]]:
    data = _read("search-parameters.json")
    return tuple(data["parameter"]), tuple(data["anyTarget"])


@cache
def _by_id() -> dict[str, dict[str, Any]]:
    return {definition["id"]: definition for definition in _definitions()[0]}


def _components(definition: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    parts = []
    for component in definition.get("component", ()):
        part = _by_id().get(component.get("definition", "").rsplit("/", 1)[-1]) or {}
        parts.append((part.get("type", ""), component.get("expression", ""), part.get("code", "")))
    return tuple(parts)


def _entry(definition: dict[str, Any], resource_type: str) -> SearchParam:
    targets = definition.get("target", ())
    if "Resource" in targets:
        targets = _definitions()[1]
    return SearchParam(
        code=definition["code"],
        type=definition["type"],
        resource_type=resource_type,
        expression=expression_for(definition.get("expression", ""), resource_type),
        targets=tuple(targets),
        url=definition.get("url") or CANONICAL_BASE + definition["id"],
        components=_components(definition),
    )


@cache
def _specific() -> dict[str, dict[str, dict[str, Any]]]:
    """Map each resource type to its own (not common) definitions by code."""
    by_type: dict[str, dict[str, dict[str, Any]]] = {}
    for definition in _definitions()[0]:
        for base in definition["base"]:
            if base not in COMMON_BASES:
                by_type.setdefault(base, {}).setdefault(definition["code"], definition)
    return by_type


@cache
def _r4b_kind(resource_type: str) -> str | None:
    """Return "DomainResource", "Resource" or None for a type name, per fhir.resources.R4B."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.domainresource import DomainResource
    from fhir.resources.R4B.resource import Resource

    try:
        model = get_fhir_model_class(resource_type)
    except (ValueError, KeyError, ImportError, AttributeError):
        return None
    if issubclass(model, DomainResource):
        return "DomainResource"
    return "Resource" if issubclass(model, Resource) else None


@cache
def search_params(resource_type: str) -> Mapping[str, SearchParam]:
    """Return every search parameter of ``resource_type`` by code, the common ones included.

    An unknown type has none. The mapping is shared and read-only.
    """
    kind = _r4b_kind(resource_type)
    if kind is None:
        return MappingProxyType({})
    applies = ("Resource", "DomainResource") if kind == "DomainResource" else ("Resource",)
    params: dict[str, SearchParam] = {}
    for definition in _definitions()[0]:
        if any(b in applies for b in definition["base"]):
            params[definition["code"]] = _entry(definition, resource_type)
    for code, definition in _specific().get(resource_type, {}).items():
        params[code] = _entry(definition, resource_type)
    return MappingProxyType(params)


@cache
def indexed_params(resource_type: str) -> Mapping[str, SearchParam]:
    """Return the parameters the extractor indexes: the simple types with an expression.

    Composite and special parameters are left out, and so are ``_id`` and ``_lastUpdated``,
    which storage answers from its own columns.
    """
    return MappingProxyType(
        {
            code: p
            for code, p in search_params(resource_type).items()
            if p.type in INDEXED_TYPES and p.expression and code not in STORED_COLUMNS
        }
    )


# A composite is searched as ``token$value`` through its own index rows: the token part first,
# then one of these (search.html#composite). The others (MolecularSequence's three-part
# coordinates, DocumentReference's reference-first relationship) are not offered.
COMPOSITE_VALUE_TYPES = frozenset({"token", "quantity", "date", "string"})


@cache
def composite_params(resource_type: str) -> Mapping[str, SearchParam]:
    """Return the composite parameters of ``resource_type`` this server indexes and searches."""
    from fhir.search.composites import compile_composite

    return MappingProxyType(
        {
            code: p
            for code, p in search_params(resource_type).items()
            if p.type == "composite"
            and p.expression
            and len(p.components) == 2
            and p.components[0][0] == "token"
            and p.components[1][0] in COMPOSITE_VALUE_TYPES
            and compile_composite(p) is not None
        }
    )


@cache
def searchable_params(resource_type: str) -> Mapping[str, SearchParam]:
    """Return every parameter a search of ``resource_type`` may name (``_id`` and
    ``_lastUpdated`` aside): the indexed ones and the supported composites."""
    return MappingProxyType({**indexed_params(resource_type), **composite_params(resource_type)})


@cache
def is_identifier_param(param: SearchParam) -> bool:
    """Whether every part of a token parameter finds Identifiers (``:of-type`` applies)."""
    from fhir.search.index_paths import static_type

    parts = split_union(param.expression)
    return (
        param.type == "token"
        and bool(parts)
        and all(static_type(part, param.resource_type) == "Identifier" for part in parts)
    )


@cache
def resource_types() -> tuple[str, ...]:
    """Every R4B resource type (``resource-types.json``), those without parameters of their own
    (Binary, Parameters...) included: the common ones (``_id``, ``_lastUpdated``) apply to all."""
    listed = set(_read("resource-types.json")) | set(_specific())
    return tuple(sorted(t for t in listed if _r4b_kind(t) is not None))


@cache
def _compartment() -> dict[str, list[str]]:
    return _read("compartment-patient.json")


def patient_compartment_params(resource_type: str) -> tuple[str, ...]:
    """Return the parameters that put a ``resource_type`` in a Patient's compartment.

    FHIR R4B compartmentdefinition-patient.html; empty when the type is never in it.
    """
    return tuple(_compartment().get(resource_type, ()))


@dataclass(frozen=True)
class Storage:
    """Where a parameter's index rows live: under its own code, or those of the ones it repeats.

    Many definitions repeat others: ``Observation.patient`` is ``Observation.subject.where(resolve()
    is Patient)``, ``combo-code`` is ``code | component-code``. Their rows would be copies, so the
    extractor writes none and a search reads the rows of ``codes`` (of ``target_type`` only).
    """

    codes: tuple[str, ...]
    target_type: str | None = None


_TYPED_PART = re.compile(r"(?P<base>.+)\.where\(resolve\(\) is (?P<type>[A-Z][A-Za-z]+)\)")


@cache
def storage(resource_type: str) -> Mapping[str, Storage]:
    """Return, per indexed parameter of ``resource_type``, where its rows are."""
    params = indexed_params(resource_type)
    parts = {code: frozenset(split_union(p.expression)) for code, p in params.items()}
    owner: dict[tuple[str, frozenset[str]], str] = {}  # an expression's storing code: the first
    for code in sorted(params):
        owner.setdefault((params[code].type, parts[code]), code)
    found: dict[str, Storage] = {}
    for code, param in params.items():
        base = owner[(param.type, parts[code])]
        if base != code:  # the very expression under another code
            found[code] = Storage((base,))
        elif param.type == "reference" and len(parts[code]) == 1:
            typed = _TYPED_PART.fullmatch(next(iter(parts[code])))
            typed_base = typed and owner.get(("reference", frozenset([typed["base"]])))
            found[code] = Storage((typed_base,), typed["type"]) if typed_base else Storage((code,))
    own = {code for code in params if found.get(code, Storage((code,))).codes == (code,)}
    for code in sorted((c for c in params if c not in found), key=lambda c: len(parts[c])):
        bases = _covering(code, params, parts, own)
        found[code] = Storage(bases) if bases else Storage((code,))
        if bases:
            own.discard(code)
    return MappingProxyType(found)


def _covering(code: str, params, parts, own: set[str]) -> tuple[str, ...] | None:
    """Parameters storing their own rows whose expressions, together, are exactly ``code``'s."""
    kind, wanted = params[code].type, parts[code]
    candidates = sorted(
        (other for other in own if other != code and params[other].type == kind and parts[other] < wanted),
        key=lambda other: (-len(parts[other]), other),
    )
    chosen, covered = [], set()
    for other in candidates:
        if covered.isdisjoint(parts[other]):
            chosen.append(other)
            covered |= parts[other]
    return tuple(sorted(chosen)) if covered == wanted and len(chosen) > 1 else None


def stored_under(resource_type: str, code: str) -> Storage:
    """Where the rows of ``code`` are (its own code for a parameter nobody indexes)."""
    return storage(resource_type).get(code) or Storage((code,))
