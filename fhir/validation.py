"""Validation of incoming resources with ``fhir.resources.R4B`` (FHIR R4B 4.3.0).

A failed validation names the element in FHIRPath form (``Patient.birthDate``) so the
client knows what to fix; nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from app.json_depth import nested_within
from fhir.errors import FhirError, Issue
from fhir.model_classes import model_class
from fhir.resource_rules import rule_problems

MAX_DEPTH = 64
MAX_ISSUES = 100  # problems one OperationOutcome lists
ID_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")


def valid_id(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 64 and set(value) <= ID_CHARACTERS


def _depth_ok(value: dict | list) -> bool:
    """No object or array nested more than MAX_DEPTH levels below the resource."""
    return nested_within(value, MAX_DEPTH + 1)


def _element_path(resource_type: str, loc: tuple) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("function-", "union[", "list[", "json-")):
            path += f".{part}"
    return path


def validate_resource(resource: object, expected_type: str | None = None) -> dict:
    """Check that ``resource`` is a valid R4B resource (of ``expected_type``); return it."""
    verdict = prevalidated(resource)
    if verdict is None:
        error = model_error(checked_model_class(resource, expected_type), resource)
    else:  # the cheap checks passed when it was sent; only the expected type is this call's own
        _check_type(resource["resourceType"], expected_type)
        error = verdict.error
    if error is not None:
        raise error
    return resource


def _check_type(resource_type: str, expected_type: str | None) -> None:
    if expected_type and resource_type != expected_type:
        raise FhirError.invalid(
            f"The resource is a {resource_type[:64]}, but the URL names {expected_type}.", ["resourceType"]
        )


def checked_model_class(resource: object, expected_type: str | None = None):
    """The cheap checks, before the model: the R4B class to validate ``resource`` with."""
    if not isinstance(resource, dict):
        raise FhirError.invalid("The body must be a FHIR resource (a JSON object).")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise FhirError.invalid("The resource has no resourceType.", ["resourceType"])
    _check_type(resource_type, expected_type)
    cls = model_class(resource_type)
    if cls is None:
        raise FhirError.not_supported(f"Unknown resource type {resource_type[:64]!r}.")
    if not _depth_ok(resource):
        raise FhirError.invalid(f"The resource is nested deeper than {MAX_DEPTH} levels.")
    if "id" in resource and not valid_id(resource["id"]):
        raise FhirError.invalid("The id is not a valid FHIR id.", [f"{resource_type}.id"])
    return cls


def model_error(cls, resource: dict) -> FhirError | None:
    """Validate against the R4B model and the rules it leaves out (``fhir.resource_rules``);
    the 400 listing every element at fault, or None."""
    resource_type = cls.__name__
    issues, model = [], None
    try:
        model = cls.model_validate(resource)
    except ValidationError as error:
        for detail in error.errors()[:MAX_ISSUES]:
            path = _element_path(resource_type, detail.get("loc", ()))
            issues.append(Issue("structure", f"{path}: {detail.get('msg', 'invalid')}", expression=[path]))
    except (ValueError, TypeError) as error:
        return FhirError.invalid(f"The resource is not valid {resource_type}: {str(error)[:300]}")
    for code, path, message in rule_problems(resource, model)[: MAX_ISSUES - len(issues)]:
        issues.append(Issue(code, f"{path}: {message}", expression=[path]))
    return FhirError(400, issues) if issues else None


# -- verdicts reached elsewhere (a validation helper process) ---------------------------


@dataclass(frozen=True)
class Verdict:
    error: FhirError | None


class Verdicts(Protocol):
    def verdict(self, resource: dict) -> Verdict | None:
        """The model check's outcome for this very object, or None to validate here."""


_verdicts: ContextVar[Verdicts | None] = ContextVar("fhir_validation_verdicts", default=None)


def prevalidated(resource: dict) -> Verdict | None:
    source = _verdicts.get()
    return source.verdict(resource) if source is not None else None


@contextmanager
def verdicts_from(source: Verdicts) -> Iterator[None]:
    """Within the block, ``validate_resource`` takes the model check's outcome from ``source``."""
    token = _verdicts.set(source)
    try:
        yield
    finally:
        _verdicts.reset(token)
