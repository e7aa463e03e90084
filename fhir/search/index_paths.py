"""Compile a search parameter's FHIRPath expression once into a function over resource JSON.

Most of the specification's expressions are plain paths, perhaps through a choice type
(``Observation.effective``), narrowed by ``as``/``ofType``, filtered by ``where(a='b')`` or
``where(resolve() is Patient)``. Those are walked directly on the dict; the rest go to
fhirpathpy, compiled with its R4 model. FHIR R4B fhirpath.html, search.html#table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

from fhir.search.index_values import reference_type

Found = list[tuple[Any, "str | None"]]  # each value, with its FHIR type when known
Evaluator = Callable[[dict[str, Any]], Found]

MODEL = models["r4"]
_PATH_TYPES: dict[str, str] = MODEL["path2Type"]
_CHOICES: dict[str, list[str]] = MODEL["choiceTypePaths"]
_PARENTS: dict[str, str] = MODEL["type2Parent"]
_ELSEWHERE: dict[str, str] = MODEL["pathsDefinedElsewhere"]
_BACKBONES = frozenset({"BackboneElement", "Element"})
# Choice suffixes that name primitive types, which FHIR spells with a lower-case initial.
_PRIMITIVES = frozenset(
    "Base64Binary Boolean Canonical Code Date DateTime Decimal Id Instant Integer Markdown Oid"  # noqa: SIM905
    " PositiveInt String Time UnsignedInt Uri Url Uuid".split()
)

_PAREN_AS = re.compile(r"\((?P<path>\w+(?:\.\w+)+) as (?P<type>\w+)\)(?P<tail>(?:\.\w+)*)")
_BARE_AS = re.compile(r"(?P<path>\w+(?:\.\w+)+) as (?P<type>\w+)")
# Patient-deceased: "Patient.deceased.exists() and Patient.deceased != false".
_EXISTS_NOT_FALSE = re.compile(r"(?P<path>\w+(?:\.\w+)+)\.exists\(\) and (?P=path) != false")
_STEP = re.compile(
    r"\.(?:as\((?P<as>\w+)\)|ofType\((?P<of>\w+)\)|where\(resolve\(\) is (?P<is>\w+)\)"
    r"|where\((?P<field>\w+)\s*=\s*'(?P<literal>[^'\\]*)'\)|(?P<name>\w+))"
)

# Operations of a compiled fast path.
_GET, _CHOICE, _WHERE, _IS = range(4)


class CompileError(ValueError):
    """The expression cannot be compiled (fhirpathpy rejected it)."""


def _steps(part: str, resource_type: str) -> list[tuple[str, str, str]] | None:
    """Parse ``part`` into ("name"|"as"|"where"|"is", arg, literal) steps; None if not simple."""
    if match := _PAREN_AS.fullmatch(part) or _BARE_AS.fullmatch(part):
        tail = (match.groupdict().get("tail") or "").split(".")[1:]
        inner = _steps(match["path"], resource_type)
        if inner is None:
            return None
        return [*inner, ("as", match["type"], ""), *(("name", t, "") for t in tail)]
    root, dot, _ = part.partition(".")
    if root != resource_type or not dot:
        return None
    steps, position = [], len(root)
    while position < len(part):
        step = _STEP.match(part, position)
        if step is None:
            return None
        position = step.end()
        if step["name"]:
            steps.append(("name", step["name"], ""))
        elif step["as"] or step["of"]:
            steps.append(("as", step["as"] or step["of"], ""))
        elif step["is"]:
            steps.append(("is", step["is"], ""))
        else:
            steps.append(("where", step["field"], step["literal"]))
    return steps


def _lookup(prefix: str, name: str) -> str:
    """Return the model path of element ``name`` under ``prefix``, looking through base types."""
    owner: str | None = prefix
    while owner:
        path = f"{owner}.{name}"
        if path in _PATH_TYPES or path in _CHOICES:
            return path
        owner = _PARENTS.get(owner)
    return f"{prefix}.{name}"


def _fhir_type(suffix: str) -> str:
    return suffix[0].lower() + suffix[1:] if suffix in _PRIMITIVES else suffix


def _same_type(a: str, b: str) -> bool:
    return a[:1].upper() + a[1:] == b[:1].upper() + b[1:]


def _plan(steps: list[tuple[str, str, str]], resource_type: str) -> tuple[list[tuple], str | None] | None:
    """Turn steps into walk operations and the static type of the result; None if not simple."""
    ops: list[tuple] = []
    prefix, kind = resource_type, resource_type
    i = 0
    while i < len(steps):
        step, arg, literal = steps[i]
        if step == "name":
            path = _lookup(prefix, arg)
            choices = _CHOICES.get(path)
            if choices is None:
                kind = _PATH_TYPES.get(path)
                ops.append((_GET, arg))
                prefix = _ELSEWHERE.get(path, path) if kind is None or kind in _BACKBONES else kind
            elif i + 1 < len(steps) and steps[i + 1][0] == "as":
                wanted = [c for c in choices if _same_type(c, steps[i + 1][1])]
                if not wanted:
                    return None
                kind = prefix = _fhir_type(wanted[0])
                ops.append((_GET, arg + wanted[0]))
                i += 1
            elif i + 1 == len(steps):
                ops.append((_CHOICE, tuple((arg + c, _fhir_type(c)) for c in choices)))
                kind = None
            else:
                return None  # a choice walked through without naming its type
        elif step == "as":
            if kind is None or not _same_type(kind, arg):
                return None
        elif step == "where":
            ops.append((_WHERE, arg, literal))
        else:
            ops.append((_IS, arg))
        i += 1
    return ops, kind


def _fast(ops: list[tuple], kind: str | None) -> Evaluator:
    """Build the walker for ``ops``; values keep their static type ``kind``."""
    ops_tuple = tuple(ops)

    def walk(resource: dict[str, Any]) -> Found:
        nodes: list[Any] = [resource]
        for op in ops_tuple:
            found: list[Any] = []
            code = op[0]
            if code == _GET:
                key = op[1]
                for node in nodes:
                    if isinstance(node, dict) and (value := node.get(key)) is not None:
                        if isinstance(value, list):
                            found.extend(value)
                        else:
                            found.append(value)
            elif code == _CHOICE:
                typed = []
                for node in nodes:
                    if isinstance(node, dict):
                        for key, type_ in op[1]:
                            value = node.get(key)
                            if value is not None:
                                for item in value if isinstance(value, list) else (value,):
                                    if item is not None:
                                        typed.append((item, type_))
                                break
                return typed
            elif code == _WHERE:
                found = [n for n in nodes if isinstance(n, dict) and n.get(op[1]) == op[2]]
            else:
                found = [n for n in nodes if reference_type(n) == op[1]]
            if not found:
                return []
            nodes = found
        return [(n, kind) for n in nodes if n is not None]

    return walk


def _exists_not_false(walk: Evaluator) -> Evaluator:
    """``X.exists() and X != false``: true when X has a value other than a single ``false``."""

    def evaluate(resource: dict[str, Any]) -> Found:
        found = walk(resource)
        return [(bool(found) and not (len(found) == 1 and found[0][0] is False), "boolean")]

    return evaluate


def compile_fast(part: str, resource_type: str) -> Evaluator | None:
    """Compile ``part`` to a direct walk of the JSON, or return None when it is not simple."""
    part = part.strip()
    if match := _EXISTS_NOT_FALSE.fullmatch(part):
        walk = compile_fast(match["path"], resource_type)
        return _exists_not_false(walk) if walk else None
    steps = _steps(part, resource_type)
    planned = _plan(steps, resource_type) if steps else None
    return _fast(*planned) if planned else None


def _planned(part: str, resource_type: str) -> tuple[list[tuple], str | None] | None:
    steps = _steps(part.strip(), resource_type)
    return _plan(steps, resource_type) if steps else None


def static_walk(part: str, resource_type: str) -> tuple[tuple[str, ...], str | None] | None:
    """The JSON keys a simple ``part`` walks (``valueQuantity``) and the FHIR type it finds;
    None when the part is not a plain walk of keys (filters, choices left open, fhirpathpy)."""
    planned = _planned(part, resource_type)
    if planned is None or any(op[0] != _GET for op in planned[0]):
        return None
    return tuple(op[1] for op in planned[0]), planned[1]


def static_type(part: str, resource_type: str) -> str | None:
    """The FHIR type of what a simple ``part`` finds; None when not simple or not known."""
    planned = _planned(part, resource_type)
    return planned[1] if planned else None


def compile_fhirpath(part: str) -> Evaluator:
    """Compile ``part`` with fhirpathpy (R4 model, so choice types resolve); values are untyped."""
    try:
        function = fhirpathpy.compile(part, model=MODEL)
    except Exception as exc:  # fhirpathpy raises plain Exceptions from its parser
        raise CompileError(f"{part!r}: {exc}") from exc

    def evaluate(resource: dict[str, Any]) -> Found:
        return [(value, None) for value in function(resource) if value is not None]

    return evaluate


def compile_part(part: str, resource_type: str) -> tuple[Evaluator, bool]:
    """Compile one union part for ``resource_type``; return the evaluator and whether it is fast."""
    fast = compile_fast(part, resource_type)
    return (fast, True) if fast else (compile_fhirpath(part), False)
