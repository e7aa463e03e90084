"""The index rows of composite search parameters (FHIR R4B search.html#composite).

A composite such as ``component-code-value-quantity`` pairs values found in one element: an
Observation's component whose code is X *and* whose value is Y. Each element the parameter's
expression finds (the Observation itself, each component) gives rows pairing its token part with
its value part; values of different elements are never paired. One read at the resource itself
(``code-value-quantity``: an Observation holds one code and one value) needs no rows of its own:
it is its two parameters ANDed (``Source.parts``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir.search import index_values as v
from fhir.search.index_paths import Evaluator, compile_part, static_walk
from fhir.search.registry import SearchParam, composite_params, indexed_params, split_union

# The component expressions of the specification: ``code``, ``value.as(Quantity)`` and
# ``(value as CodeableConcept)``, each relative to the element.
_RELATIVE = re.compile(r"\(?(?P<name>[a-z]\w*)(?:\.as\((?P<as>\w+)\)| as (?P<as2>\w+))?\)?")

# (system, code) of the token part; the value part in idx_composite's value_* column order:
# (value_system, value_code, value_unit, value_number, value_low, value_high, value_string)
ValuePart = tuple[Any, Any, Any, Any, Any, Any, Any]
Row = tuple[str, str | None, str | None, *ValuePart]


def relative_keys(expression: str) -> tuple[tuple[str, str | None], ...] | None:
    """The JSON keys (with the FHIR type they hold) a component expression reads, or None."""
    keys = []
    for part in split_union(expression):
        match = _RELATIVE.fullmatch(part.strip())
        if match is None:
            return None
        kind = match["as"] or match["as2"]
        keys.append((match["name"] + kind[0].upper() + kind[1:], kind) if kind else (match["name"], None))
    return tuple(keys)


def _token_parts(value: Any, hint: str | None) -> Iterator[tuple[str | None, str | None]]:
    if isinstance(value, dict) and "coding" in value:  # a CodeableConcept: its codings, no text
        codings = value["coding"]
        for coding in codings if isinstance(codings, list) else ():
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str) and code:
                system = coding.get("system")
                yield (system[:256] if isinstance(system, str) and system else None), code[:256]
        return
    for system, code, _ in v.token_values(value, hint):
        if code is not None:
            yield (system and system[:256], code[:256])


def _value_parts(kind: str, value: Any, hint: str | None) -> Iterator[ValuePart]:
    if kind == "token":
        for system, code in _token_parts(value, hint):
            yield system, code, None, None, None, None, None
    elif kind == "quantity":
        for low, high, system, code, unit in v.quantity_values(value):
            if v.indexable_number(low, high):
                yield (
                    system and system[:256],
                    code and code[:256],
                    unit and unit[:256],
                    (low + high) / 2,
                    None,
                    None,
                    None,
                )
    elif kind == "date":
        for low, high in v.date_ranges(value):
            yield None, None, None, None, low, high, None
    elif kind == "string":
        for text in v.string_values(value):
            if normalized := v.normalize_string(text):
                yield None, None, None, None, None, None, normalized


@dataclass(frozen=True)
class CompositeStep:
    param: SearchParam
    elements: tuple[Evaluator, ...]  # what the parameter's expression finds
    token_keys: tuple[tuple[str, str | None], ...]
    value_kind: str
    value_keys: tuple[tuple[str, str | None], ...]

    def rows(self, resource: dict[str, Any]) -> Iterator[Row]:
        for evaluate in self.elements:
            for element, _ in evaluate(resource):
                if isinstance(element, dict):
                    yield from self._element_rows(element)

    def _element_rows(self, element: dict[str, Any]) -> Iterator[Row]:
        # the value first: most elements hold none of most composites' values (an Observation
        # has one value[x]), and then the code need not be read
        values = [
            part
            for value, hint in _found(element, self.value_keys)
            for part in _value_parts(self.value_kind, value, hint)
        ]
        if not values:
            return
        tokens = [
            part for value, hint in _found(element, self.token_keys) for part in _token_parts(value, hint)
        ]
        for (system, code), value in itertools.product(tokens, values):
            yield (self.param.code, system, code, *value)


def _found(element: dict[str, Any], keys) -> Iterator[tuple[Any, str | None]]:
    for key, kind in keys:
        found = element.get(key)
        for item in found if isinstance(found, list) else (found,):
            if item is not None:
                yield item, kind


def _root(resource: dict[str, Any]) -> list[tuple[Any, str | None]]:
    return [(resource, None)]


def compile_composite(param: SearchParam) -> CompositeStep | None:
    """The extraction step of a composite parameter, or None when its expressions are not ones
    this module reads (then the parameter is not offered: ``registry.composite_params``)."""
    (_, token_expression, _), (value_kind, value_expression, _) = param.components
    token_keys, value_keys = relative_keys(token_expression), relative_keys(value_expression)
    if not token_keys or not value_keys:
        return None
    elements: list[Callable] = []
    for part in split_union(param.expression):
        if part == param.resource_type:
            elements.append(_root)
        else:
            try:
                elements.append(compile_part(part, param.resource_type)[0])
            except Exception:  # a spec expression fhirpathpy rejects: the parameter is not offered
                return None
    return CompositeStep(param, tuple(elements), token_keys, value_kind, value_keys)


# A part of the parameter a component stands for that reads nothing of the component's kind:
# ``value-quantity`` also reads ``valueSampledData``, which has no value, low or high.
_READS_NOTHING = frozenset({("quantity", "SampledData")})


@dataclass(frozen=True)
class Source:
    """Where a composite's matches come from: its own ``fhir_idx_composite`` rows (``rows``, a
    param code), or — for one read at the resource itself, which holds one code and one value —
    the rows of the two parameters its components stand for, ANDed (``parts``)."""

    rows: str | None = None
    parts: tuple[str, str] | None = None


def _key_paths(param: SearchParam) -> dict[tuple[str, ...], str | None] | None:
    """The JSON key paths a simple parameter reads, with the FHIR type each finds; None if not simple."""
    paths = {}
    for part in split_union(param.expression):
        walk = static_walk(part, param.resource_type)
        if walk is None:
            return None
        paths[walk[0]] = walk[1]
    return paths


def _answered_by_parts(param: SearchParam) -> tuple[str, str] | None:
    """The codes of the two parameters that answer ``param`` exactly, ANDed, or None.

    Only for a composite read at the resource root (``code-value-quantity``: an Observation has
    one code, one value, so any of its codes with its value is a pair of one element), and only
    when each component's parameter reads what the component reads, nothing more of its kind.
    """
    if split_union(param.expression) != [param.resource_type]:
        return None
    codes = []
    indexed = indexed_params(param.resource_type)
    for kind, expression, code in param.components:
        stands_for = indexed.get(code)
        keys = relative_keys(expression)
        paths = _key_paths(stands_for) if stands_for is not None and stands_for.type == kind else None
        if paths is None or keys is None:
            return None
        wanted = {(key,) for key, _ in keys}
        extra = {path: found for path, found in paths.items() if path not in wanted}
        if not wanted <= set(paths) or any((kind, found) not in _READS_NOTHING for found in extra.values()):
            return None
        codes.append(code)
    return codes[0], codes[1]


@cache
def _sources(resource_type: str) -> dict[str, tuple[Source, ...]]:
    """Per composite of ``resource_type``, where its matches come from. One read at several
    places (``combo-code-value-quantity``: the Observation and its components) is the sum of
    those read at each (``code-value-quantity``, ``component-code-value-quantity``)."""
    params = composite_params(resource_type)

    def reading(p: SearchParam) -> tuple:
        return tuple((kind, expression) for kind, expression, _ in p.components)

    found: dict[str, tuple[Source, ...]] = {}
    for code, p in params.items():
        parts = _answered_by_parts(p)
        found[code] = (Source(parts=parts),) if parts else (Source(rows=code),)
    single = {
        (reading(p), split_union(p.expression)[0]): code
        for code, p in params.items()
        if len(split_union(p.expression)) == 1
    }
    for code, p in params.items():
        places = split_union(p.expression)
        covering = [single.get((reading(p), place)) for place in places]
        if len(places) > 1 and all(covering):
            found[code] = tuple(source for other in sorted(covering) for source in found[other])
    return found


def composite_sources(resource_type: str, code: str) -> tuple[Source, ...]:
    return _sources(resource_type)[code]


@cache
def composite_plan(resource_type: str) -> tuple[CompositeStep, ...]:
    """The composites whose own rows are written (``Source.rows``)."""
    written = {source.rows for sources in _sources(resource_type).values() for source in sources}
    steps = (
        compile_composite(param) for code, param in composite_params(resource_type).items() if code in written
    )
    return tuple(step for step in steps if step is not None)
