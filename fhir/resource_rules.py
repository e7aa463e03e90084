"""What FHIR R4B requires of a resource beyond what the ``fhir.resources`` models check.

* No JSON ``null`` (but in a primitive array whose ``_name`` sibling fills the place), and no
  empty object, array or string (json.html, ele-1).
* A ``code`` with a required binding holds one of its codes (terminologies.html#required), from
  R4B's own value sets (``fhir/definitions/required-codes.json``).
* A Reference names a type its element allows (``Reference(Patient | Group)``), and a
  conditional reference (``Type?criteria``) only appears in a Bundle, which resolves it first.
* The narrative is safe XHTML (``fhir.narrative``).
* Invariants of the common resources and types: obs-6, obs-7, pat-1, qty-3, ref-1.

Every problem is reported, each with its FHIRPath, so one OperationOutcome lists them all.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from fhir import exact_json
from fhir.model_classes import is_resource_type, model_class
from fhir.narrative import narrative_problems

MAX_PROBLEMS = 100
QUANTITIES = frozenset({"Quantity", "Age", "Count", "Distance", "Duration"})  # code and system


@cache
def required_codes() -> dict[str, frozenset[str]]:
    text = files("fhir.definitions").joinpath("required-codes.json").read_text("utf-8")
    return {path: frozenset(codes) for path, codes in json.loads(text).items()}


class _Problems(list):
    """(OperationOutcome issue type, FHIRPath, message) of each problem found."""

    def add(self, expression: str, message: str, code: str = "structure") -> None:
        if len(self) < MAX_PROBLEMS:
            self.append((code, expression, message))


def rule_problems(resource: dict, model) -> list[tuple[str, str, str]]:
    """``(issue type, FHIRPath, message)`` for each rule ``resource`` breaks; ``model`` is its
    validated ``fhir.resources`` instance (None when the model refused it: the rules that need
    it wait until the model's own problems are mended)."""
    problems = _Problems()
    resource_type = resource["resourceType"]
    if _may_hold_empties(resource):
        _empty_values(resource, resource_type, problems)
    if model is not None:  # (and so every element has the JSON type its definition gives it)
        _Walk(problems).resource(resource, resource_type, contained=False)
        _invariants(resource, resource_type, problems)
    return list(problems)


# -- nulls and empties -------------------------------------------------------------------

_EMPTIES = (b"null", b"[]", b"{}", b'""')


def _may_hold_empties(resource: dict) -> bool:
    """Whether the walk below can find anything: compact JSON without ``null``, ``[]``, ``{}``
    or ``""`` holds no empty (a string that happens to contain one only costs the walk)."""
    try:
        text = exact_json.dumps(resource)
    except TypeError:
        return True
    return any(empty in text for empty in _EMPTIES)


def _empty_values(value, expression: str, problems: _Problems) -> None:
    if isinstance(value, dict):
        if not value:
            problems.add(expression, "an empty object is not allowed: leave the element out.")
        for key, item in value.items():
            child = f"{expression}.{key}"
            if item is None:
                problems.add(child, "null is not allowed: leave the element out.")
            elif isinstance(item, list):
                _empty_array_items(value, key, item, child, problems)
            else:
                _empty_values(item, child, problems)
    elif isinstance(value, str) and not value:
        problems.add(expression, "an empty string is not allowed: leave the element out.")


def _empty_array_items(parent: dict, key: str, items: list, expression: str, problems: _Problems) -> None:
    if not items:
        problems.add(expression, "an empty array is not allowed: leave the element out.")
        return
    # json.html#primitive: ``"given": ["a", null]`` with ``"_given": [null, {...}]`` keeps places
    sibling = parent.get(key[1:] if key.startswith("_") else f"_{key}")
    for index, item in enumerate(items):
        if item is None:
            partner = sibling[index] if isinstance(sibling, list) and index < len(sibling) else None
            if partner is None:
                problems.add(f"{expression}[{index}]", "null is not allowed here.")
        else:
            _empty_values(item, f"{expression}[{index}]", problems)


# -- narratives --------------------------------------------------------------------------


# -- bindings, references and typed invariants, along the validated model ----------------


def is_conditional_reference(reference: str) -> bool:
    """``Type?criteria``: the part before the ``?`` is a bare name, whatever the criteria hold
    (an identifier system is usually a URL: ``Patient?identifier=https://h.example/mrn|1``).
    An absolute URL or a ``Type/id`` with a query is a plain reference."""
    head, question, _ = reference.partition("?")
    return bool(question) and "/" not in head and ":" not in head


def _reference_target(reference: str) -> str | None:
    """The type a literal reference names (``Type/id``, ``.../Type/id/_history/v``), or None
    for one whose shape names no resource type (an absolute URL of another kind)."""
    parts = reference.partition("?")[0].split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and is_resource_type(parts[-2]):
        return parts[-2]
    return None


# Data types in which the walk can find nothing (no required binding, reference, narrative or
# quantity among their elements): not walked, unless an extension (which could hold any) is there.
_INERT_TYPES = frozenset({"Coding", "CodeableConcept", "Period", "Attachment"})


def _without_extensions(element: dict, type_name: str) -> bool:
    if "extension" in element:
        return False
    codings = element.get("coding") if type_name == "CodeableConcept" else None
    return all("extension" not in coding for coding in codings or ())


@dataclass(frozen=True)
class _Element:
    """One element of a model class, as the walk needs it."""

    name: str  # in FHIRPaths: the JSON name, or a choice's ``value[x]``
    json_name: str
    type_name: str | None  # of a complex element: its model's type (``Reference``, ``ObservationComponent``)
    model: type | None
    references: tuple[str, ...]  # the types a Reference element may point at


def _element_model(annotation):
    """The model class of a complex element's annotation (``List[abc.ReferenceType] | None``)."""
    if hasattr(annotation, "get_model_klass"):
        return annotation.get_model_klass()
    for argument in typing.get_args(annotation):
        if (found := _element_model(argument)) is not None:
            return found
    return None


@cache
def _elements(model_class) -> dict[str, _Element]:
    """A model class's FHIR elements by JSON name (``valueQuantity``)."""
    found = {}
    for name, field in model_class.model_fields.items():
        extra = field.json_schema_extra
        if not isinstance(extra, dict) or not extra.get("element_property"):
            continue
        json_name = field.alias or name
        model = _element_model(field.annotation)
        choice = extra.get("one_of_many")
        found[json_name] = _Element(
            f"{choice}[x]" if choice else json_name,
            json_name,
            model.get_resource_type() if model is not None else None,
            model,
            tuple(extra.get("enum_reference_types") or ()),
        )
    return found


class _Walk:
    """Walks the JSON of a resource the model has accepted (so every element has its JSON type),
    guided by the model classes' element definitions."""

    def __init__(self, problems: _Problems):
        self.problems = problems
        self.codes = required_codes()
        self.backbone_paths: dict[type, str] = {}  # a backbone class at its first path (contentReference)
        self.contained_ids: set[str] = set()

    def model(self, data: dict, model_class, path: str, expression: str) -> None:
        elements = _elements(model_class)
        for key, value in data.items():
            element = elements.get(key)
            if element is None:
                continue  # resourceType, a primitive's _extension sibling
            element_path = f"{path}.{element.name}"
            many = isinstance(value, list)
            allowed = self.codes.get(element_path)
            for index, item in enumerate(value if many else (value,)):
                # the expression is only made for what may hold a problem
                if isinstance(item, str):
                    if allowed is None or item in allowed:
                        continue
                elif not isinstance(item, dict) or element.model is None:
                    continue  # a number, boolean, null (its own rule)
                child = f"{expression}.{key}[{index}]" if many else f"{expression}.{key}"
                self.element(item, element, element_path, child)

    def element(self, item, element: _Element, element_path: str, expression: str) -> None:
        if isinstance(item, str):
            allowed = self.codes[element_path]
            shown = ", ".join(sorted(allowed)[:12]) + (", ..." if len(allowed) > 12 else "")
            message = f"{item[:60]!r} is not a code of its required value set ({shown})."
            self.problems.add(expression, message, "code-invalid")
            return
        type_name = element.type_name
        if type_name in ("Resource", "DomainResource"):  # contained, Bundle.entry.resource...
            self.resource(item, expression, contained=element_path.endswith(".contained"))
        elif self.part_of_a_type(type_name, element_path):
            path = self.backbone_paths.setdefault(element.model, element_path)
            self.model(item, element.model, path, expression)
        else:
            if type_name in _INERT_TYPES and _without_extensions(item, type_name):
                return
            if type_name == "Narrative":
                for problem in narrative_problems(item.get("div")):
                    self.problems.add(f"{expression}.div", problem, "value")
            elif type_name == "Reference":
                self.reference(item, expression, element.references)
            elif type_name in QUANTITIES and item.get("code") and not item.get("system"):
                self.problems.add(
                    expression, "a Quantity with a unit code needs its system (qty-3).", "invariant"
                )
            self.model(item, element.model, type_name, expression)

    def resource(self, resource: dict, expression: str, *, contained: bool) -> None:
        """A resource inside another: a contained one shares its container's contained ids (a
        reference may name a sibling); one in a Bundle or Parameters is a resource of its own."""
        resource_type = resource.get("resourceType")
        model = model_class(resource_type) if isinstance(resource_type, str) else None
        if model is None:
            return
        saved = self.contained_ids
        if not contained:
            self.contained_ids = {
                c["id"] for c in resource.get("contained") or () if isinstance(c, dict) and c.get("id")
            }
        self.model(resource, model, resource_type, expression)
        self.contained_ids = saved

    @staticmethod
    def part_of_a_type(type_name: str | None, element_path: str) -> bool:
        """A backbone element of a resource or a data type, not a type of its own: its class is
        named after its owner (Observation's ``component`` is an ObservationComponent, Timing's
        ``repeat`` a TimingRepeat), and its elements continue the owner's path
        (``Timing.repeat.periodUnit``). Timing, Dosage and the other types R4B builds on
        BackboneType are types of their own: their paths start at their names."""
        if type_name is None:
            return False
        owner = element_path.partition(".")[0]
        return (
            type_name != owner
            and type_name.startswith(owner)
            and type_name[len(owner) : len(owner) + 1].isupper()
        )

    def reference(self, reference: dict, expression: str, allowed) -> None:
        literal = reference.get("reference")
        named = [reference["type"]] if isinstance(reference.get("type"), str) else []
        if isinstance(literal, str):
            if literal.startswith("#"):
                if literal != "#" and literal[1:] not in self.contained_ids:
                    message = "no contained resource has that id (ref-1)."
                    self.problems.add(f"{expression}.reference", message, "invariant")
            elif is_conditional_reference(literal):
                self.problems.add(
                    f"{expression}.reference",
                    "a conditional reference (Type?criteria) is resolved in a transaction or batch only.",
                )
            elif not literal.startswith(("urn:uuid:", "urn:oid:")) and (target := _reference_target(literal)):
                named.append(target)
        if not allowed or "Resource" in allowed:
            return
        for target in named:
            if target not in allowed:
                self.problems.add(
                    expression,
                    f"this reference may point at {', '.join(allowed)}, not at {target[:64]}.",
                    "value",
                )


# -- invariants of the common resources ------------------------------------------------


def _codings(concept) -> set[tuple[str | None, str | None]]:
    if not isinstance(concept, dict):
        return set()
    codings = concept.get("coding")
    return {
        (coding.get("system"), coding["code"])
        for coding in (codings if isinstance(codings, list) else ())
        if isinstance(coding, dict)
        and isinstance(coding.get("code"), str)
        and isinstance(coding.get("system"), str | None)
    }


def _has_value(element: dict) -> bool:
    return any(key.startswith("value") for key in element)


def _invariants(resource: dict, resource_type: str, problems: _Problems) -> None:
    if resource_type == "Observation":
        if "dataAbsentReason" in resource and _has_value(resource):
            problems.add(
                "Observation", "dataAbsentReason may only be given without a value[x] (obs-6).", "invariant"
            )
        own = _codings(resource.get("code"))
        if _has_value(resource):
            for index, component in enumerate(resource.get("component") or ()):
                if isinstance(component, dict) and own & _codings(component.get("code")):
                    problems.add(
                        f"Observation.component[{index}]",
                        "a component has the Observation's own code: the Observation has no value (obs-7).",
                        "invariant",
                    )
    elif resource_type == "Patient":
        for index, contact in enumerate(resource.get("contact") or ()):
            if isinstance(contact, dict) and not {"name", "telecom", "address", "organization"} & set(
                contact
            ):
                problems.add(
                    f"Patient.contact[{index}]",
                    "a contact needs a name, telecom, address or organization (pat-1).",
                    "invariant",
                )
