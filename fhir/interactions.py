"""The FHIR RESTful interactions (FHIR R4B http.html), written against a repository."""

from __future__ import annotations

import copy
import re

import jsonpatch

from fhir import exact_json
from fhir.errors import FhirError
from fhir.storage.repository import Repository, StoredResource
from fhir.validation import valid_id, validate_resource

# ASCII digits only: str.isdigit() also accepts "²", which int() then refuses.
WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def parse_etag(value: str | None) -> int | None:
    """``W/"3"`` (or ``"3"``) → 3; None when absent; 400 when malformed."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not WHOLE_NUMBER.fullmatch(text):
        raise FhirError.invalid('If-Match must be an ETag such as W/"3".')
    return int(text)


def check_id(resource_id: str) -> str:
    if not valid_id(resource_id):
        raise FhirError.invalid("Not a valid FHIR id.")
    return resource_id


def read(repo: Repository, resource_type: str, resource_id: str) -> StoredResource:
    return repo.read(resource_type, check_id(resource_id))


def vread(repo: Repository, resource_type: str, resource_id: str, version: str) -> StoredResource:
    if not WHOLE_NUMBER.fullmatch(version):
        raise FhirError.not_found("No such version.")
    return repo.vread(resource_type, check_id(resource_id), int(version))


def create(repo: Repository, resource_type: str, body: object) -> StoredResource:
    """http.html#create: any id in the body is ignored; the server assigns one."""
    resource = validate_resource(body, resource_type)
    resource.pop("id", None)
    return repo.create(resource)


def update(
    repo: Repository, resource_type: str, resource_id: str, body: object, if_match: str | None
) -> tuple[StoredResource, bool]:
    """http.html#update, including create-on-update with a client-chosen id."""
    check_id(resource_id)
    resource = validate_resource(body, resource_type)
    if resource.get("id") != resource_id:
        raise FhirError.invalid("The resource's id must match the id in the URL.", [f"{resource_type}.id"])
    return repo.update(resource_type, resource_id, resource, if_match=parse_etag(if_match))


def patch(
    repo: Repository, resource_type: str, resource_id: str, operations: object, if_match: str | None
) -> StoredResource:
    """http.html#patch with JSON Patch (RFC 6902); the result must validate."""
    current = repo.read_for_update(resource_type, check_id(resource_id))
    expected = parse_etag(if_match)
    if expected is not None and expected != current.version_id:
        raise FhirError.precondition_failed(
            f"The resource is at version {current.version_id}, not {expected}."
        )
    if not isinstance(operations, list):
        raise FhirError.invalid("A JSON Patch document is a JSON array of operations.")
    try:
        patched = jsonpatch.JsonPatch(copy.deepcopy(operations)).apply(exact_json.loads(current.content))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, ValueError) as error:
        raise FhirError.simple(
            422, "processing", f"The patch cannot be applied: {str(error)[:200]}"
        ) from None
    resource = validate_resource(patched, resource_type)
    if resource.get("id") != resource_id:
        raise FhirError.invalid("A patch may not change the resource's id.")
    stored, _ = repo.update(resource_type, resource_id, resource, if_match=current.version_id, method="PATCH")
    return stored


def delete(repo: Repository, resource_type: str, resource_id: str) -> StoredResource | None:
    return repo.delete(resource_type, check_id(resource_id))
