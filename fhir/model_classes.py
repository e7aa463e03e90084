"""The R4B model classes of ``fhir.resources``, by resource type."""

from __future__ import annotations

from functools import cache

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource

_ABSTRACT = frozenset({"Resource", "DomainResource"})


@cache
def model_class(resource_type: str):
    """The R4B model class of a resource type, or None when R4B has no such resource."""
    if not resource_type.isascii() or not resource_type.isalpha() or not resource_type[:1].isupper():
        return None
    try:
        cls = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError, ImportError):
        return None
    # Only concrete resources: not the abstract Resource and DomainResource, not data types such
    # as HumanName, not a backbone element that happens to have a resourceType element
    # (ExampleScenarioInstance).
    if resource_type in _ABSTRACT or not issubclass(cls, Resource):
        return None
    return cls


def is_resource_type(resource_type: str) -> bool:
    return model_class(resource_type) is not None
