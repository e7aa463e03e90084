"""HTTP plumbing of the FHIR API: bodies in, resources and OperationOutcomes out."""

from __future__ import annotations

import orjson
from flask import Response, current_app, request

from app.json_depth import nested_within
from fhir.errors import INFORMATIONAL, FhirError, Issue, operation_outcome
from fhir.storage.repository import StoredResource
from fhir.version import FHIR_JSON

JSON_TYPES = (FHIR_JSON, "application/json")
# Deepest nesting a FHIR body may have. The deepest resources measured: 8 levels in the sandbox
# generator's, about 16 in FHIR's own QuestionnaireResponse examples (item, answer, item...);
# a resource may nest 64 (fhir.validation), a Bundle wraps it in 3 more.
MAX_BODY_DEPTH = 100
PATCH_TYPE = "application/json-patch+json"
_FORMATS = {"json", "application/json", FHIR_JSON, "application/fhir json"}


def base_url(hospital_id: str) -> str:
    return f"{current_app.config['FHIRGATE_BASE_URL']}/fhir/{hospital_id}"


def check_format() -> None:
    """Only JSON is served: ``_format`` or ``Accept`` asking for XML alone gets 406."""
    wanted = request.args.get("_format")
    if wanted is not None and wanted.strip().lower() not in _FORMATS:
        raise FhirError.not_supported("Only JSON is supported (_format=json).", status=406)
    accept = request.headers.get("Accept", "")
    if accept and "xml" in accept and "json" not in accept and "*/*" not in accept:
        raise FhirError.not_supported("Only JSON is supported (Accept: application/fhir+json).", status=406)


def json_body(allowed: tuple[str, ...] = JSON_TYPES):
    """The request body parsed as JSON, if its media type is one of ``allowed``."""
    if request.mimetype not in allowed:
        raise FhirError.not_supported(
            f"Send the body as {' or '.join(allowed)} (got {request.mimetype or 'nothing'}).", status=415
        )
    raw = request.get_data(cache=True)
    if not raw:
        raise FhirError.invalid("The request body is empty.")
    if b"\\u0000" in raw or b"\x00" in raw:
        raise FhirError.invalid("The body contains a NUL character, which FHIR strings may not hold.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise FhirError.invalid(f"The body is not valid JSON: {str(error)[:200]}") from None
    if not nested_within(body, MAX_BODY_DEPTH):
        raise FhirError.invalid(f"The body is nested deeper than {MAX_BODY_DEPTH} levels.")
    return body


def _response(body: str | bytes, status: int, headers: dict | None = None) -> Response:
    response = Response(body, status=status, content_type=f"{FHIR_JSON}; charset=utf-8")
    if headers:
        response.headers.update(headers)
    return response


def json_response(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    return _response(orjson.dumps(payload), status, headers)


def outcome_response(error: FhirError) -> Response:
    return _response(orjson.dumps(error.outcome()), error.status, error.headers)


def resource_headers(stored: StoredResource, hospital_id: str, *, location: bool = False) -> dict:
    headers = {
        "ETag": stored.etag,
        "Last-Modified": stored.last_updated.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    if location:
        headers["Location"] = (
            f"{base_url(hospital_id)}/{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
        )
    return headers


def resource_response(stored: StoredResource, hospital_id: str, status: int = 200, *, location: bool = False):
    """Serve a stored resource, honouring ``Prefer: return=`` on writes (FHIR R4B http.html#ops)."""
    headers = resource_headers(stored, hospital_id, location=location)
    prefer = request.headers.get("Prefer", "")
    if request.method in ("POST", "PUT", "PATCH") and "return=" in prefer:
        if "return=minimal" in prefer:
            return _response(b"", status, headers)
        if "return=OperationOutcome" in prefer:
            stored_note = Issue(INFORMATIONAL, "Stored.", severity="information")
            return json_response(operation_outcome([stored_note]), status, headers)
    return _response(stored.content or "", status, headers)
