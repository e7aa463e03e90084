"""The CapabilityStatement, generated from what is really registered (FHIR R4B capabilitystatement.html)."""

from __future__ import annotations

from functools import cache

from flask import current_app

from fhir.http import base_url
from fhir.model_classes import is_resource_type
from fhir.search.registry import composite_params, indexed_params, is_identifier_param, resource_types
from fhir.search.request import MAX_HOPS
from fhir.version import FHIR_JSON, FHIR_VERSION

INTERACTIONS = tuple(
    [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ]
)
SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


BULK_DATA = "http://hl7.org/fhir/uv/bulkdata"


def supported_types() -> tuple[str, ...]:
    return tuple(t for t in resource_types() if is_resource_type(t))


COMMON_PARAMS = (
    {"name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"},
    {
        "name": "_lastUpdated",
        "type": "date",
        "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
    },
)
# What each kind of parameter also takes (search.html#modifiers, #chaining, #composite).
DOCUMENTATION = {
    "string": "Modifiers :exact, :contains, :missing.",
    "token": "Modifiers :not, :text, :missing.",
    "reference": (
        f"Modifiers :[type], :identifier, :missing; chains (this.param.param) of up to {MAX_HOPS} links."
    ),
    "date": "Prefixes eq ne gt lt ge le sa eb ap; :missing.",
    "number": "Prefixes eq ne gt lt ge le sa eb ap; :missing.",
    "quantity": "Prefixes eq ne gt lt ge le sa eb ap, number|system|code; :missing.",
    "uri": "Modifiers :below, :above, :missing.",
    "composite": "token$value, both parts matched by the same element; no modifiers.",
}
HAS_PARAM = {
    "name": "_has",
    "type": "special",
    "documentation": (
        f"_has:Type:reference:parameter=value, nested or chained up to {MAX_HOPS} links in all."
    ),
}


def search_params_of(resource_type: str) -> list[dict]:
    """Exactly the parameters the index (plus the resource table's own columns) answers."""
    params = [dict(p) for p in COMMON_PARAMS]
    searchable = {**indexed_params(resource_type), **composite_params(resource_type)}
    for code, param in sorted(searchable.items()):
        documentation = DOCUMENTATION[param.type]
        if is_identifier_param(param):
            documentation = documentation.replace(":text,", ":text, :of-type,")
        params.append(
            {"name": code, "type": param.type, "definition": param.url, "documentation": documentation}
        )
    if _reverse_references().get(resource_type):
        params.append(dict(HAS_PARAM))
    return params


def system_params() -> list[dict]:
    """The parameters a system search without ``_type`` takes: those every type has."""
    shared = set.intersection(*(set(indexed_params(t)) for t in supported_types()))
    first = indexed_params(supported_types()[0])
    found = [dict(p) for p in COMMON_PARAMS]
    found += [{"name": c, "type": first[c].type, "definition": first[c].url} for c in sorted(shared)]
    return found


@cache
def _reverse_references() -> dict[str, tuple[str, ...]]:
    """Per type, the ``Source:param`` references that may point at it (``_revinclude``, ``_has``)."""
    found: dict[str, list[str]] = {}
    for source in supported_types():
        for code, param in sorted(indexed_params(source).items()):
            if param.type == "reference":
                for target in param.targets:
                    found.setdefault(target, []).append(f"{source}:{code}")
    return {target: tuple(sources) for target, sources in found.items()}


@cache
def _rest_resources() -> tuple[dict, ...]:
    resources = []
    for resource_type in supported_types():
        entry = {
            "type": resource_type,
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "full-support",  # If-None-Match and If-Modified-Since
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchParam": search_params_of(resource_type),
        }
        includes = [
            f"{resource_type}:{c}"
            for c, p in sorted(indexed_params(resource_type).items())
            if p.type == "reference"
        ]
        if includes:
            entry["searchInclude"] = ["*", f"{resource_type}:*", *includes]  # each also with :iterate
        if reverse := _reverse_references().get(resource_type):
            entry["searchRevInclude"] = list(reverse)  # each also with :iterate
        if resource_type == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                {"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/patient-export"},
            ]
        if resource_type == "Group":
            entry["operation"] = [
                {"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/group-export"}
            ]
        resources.append(entry)
    return tuple(resources)


def security() -> dict:
    """``rest.security``: tokens are this server's, SMART's (for a connected hospital's too)."""
    issuer = current_app.config["FHIRGATE_BASE_URL"]
    return {
        "extension": [
            {
                "url": SMART_OAUTH_URIS,
                "extension": [
                    {"url": "authorize", "valueUri": f"{issuer}/oauth/authorize"},
                    {"url": "token", "valueUri": f"{issuer}/oauth/token"},
                    {"url": "introspect", "valueUri": f"{issuer}/oauth/introspect"},
                    {"url": "revoke", "valueUri": f"{issuer}/oauth/revoke"},
                    {"url": "manage", "valueUri": f"{issuer}/portal/apps"},
                ],
            }
        ],
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "SMART App Launch (standalone and EHR launch) and SMART Backend Services",
            }
        ],
        "description": (
            "SMART on FHIR: patients approve applications at the authorization endpoint "
            "(authorization code with PKCE S256, refresh tokens); backend clients get "
            "client-credentials tokens, authenticated by private_key_jwt or a client "
            "secret; discovery at .well-known/smart-configuration."
        ),
    }


def capability_statement(hospital_id: str) -> dict:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "kind": "instance",
        "software": {"name": "fhirgate"},
        "implementation": {
            "description": f"FHIR server of hospital {hospital_id}",
            "url": base_url(hospital_id),
        },
        # Bulk Data Access 2.0: $export at the system, Patient and Group levels (fhir/bulk/).
        "instantiates": [f"{BULK_DATA}/CapabilityStatement/bulk-data"],
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "security": security(),
                "resource": list(_rest_resources()),
                "operation": [{"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/export"}],
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "search-system"},
                    {"code": "history-system"},
                ],
                # GET [base]?_type=A,B: the parameters every listed type has; these without _type
                "searchParam": [
                    {"name": "_type", "type": "token", "documentation": "Types, comma-separated."},
                    *system_params(),
                ],
                # GET Patient/{id}/{type}: search within a Patient's compartment
                "compartment": ["http://hl7.org/fhir/CompartmentDefinition/patient"],
            }
        ],
    }
