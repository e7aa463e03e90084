"""The CapabilityStatement, generated from what is really registered (FHIR R4B capabilitystatement.html)."""

from __future__ import annotations

from functools import cache

from flask import current_app

from fhir.http import base_url
from fhir.model_classes import is_resource_type
from fhir.search.registry import indexed_params, resource_types
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


def supported_types() -> tuple[str, ...]:
    return tuple(t for t in resource_types() if is_resource_type(t))


def search_params_of(resource_type: str) -> list[dict]:
    """Exactly the parameters the index (plus the resource table's own columns) answers."""
    params = [
        {"name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"},
        {
            "name": "_lastUpdated",
            "type": "date",
            "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
        },
    ]
    for code, param in sorted(indexed_params(resource_type).items()):
        params.append({"name": code, "type": param.type, "definition": param.url})
    return params


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
        if resource_type == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        resources.append(entry)
    return tuple(resources)


def capability_statement(hospital_id: str) -> dict:
    issuer = current_app.config["FHIRGATE_BASE_URL"]
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
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "extension": [
                        {
                            "url": SMART_OAUTH_URIS,
                            "extension": [
                                {"url": "token", "valueUri": f"{issuer}/oauth/token"},
                                {"url": "introspect", "valueUri": f"{issuer}/oauth/introspect"},
                                {"url": "revoke", "valueUri": f"{issuer}/oauth/revoke"},
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
                            "text": "OAuth 2.0 client credentials (SMART Backend Services)",
                        }
                    ],
                    "description": (
                        "SMART on FHIR: client-credentials tokens from the token endpoint, the client "
                        "authenticated by private_key_jwt or a client secret; discovery at "
                        ".well-known/smart-configuration."
                    ),
                },
                "resource": list(_rest_resources()),
                "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
                # GET Patient/{id}/{type}: search within a Patient's compartment
                "compartment": ["http://hl7.org/fhir/CompartmentDefinition/patient"],
            }
        ],
    }
