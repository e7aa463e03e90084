"""HTTP plumbing of the FHIR API: bodies in, resources and OperationOutcomes out."""

from __future__ import annotations

import orjson
from flask import Response, current_app, request

from app.json_depth import nested_within
from fhir import exact_json
from fhir.errors import INFORMATIONAL, FhirError, Issue, operation_outcome
from fhir.storage.repository import StoredResource
from fhir.version import FHIR_JSON, FHIR_VERSION

JSON_TYPES = (FHIR_JSON, "application/json")
# Deepest nesting a FHIR body may have. The deepest resources measured: 8 levels in the sandbox
# generator's, about 16 in FHIR's own QuestionnaireResponse examples (item, answer, item...);
# a resource may nest 64 (fhir.validation), a Bundle wraps it in 3 more.
MAX_BODY_DEPTH = 100
PATCH_TYPE = "application/json-patch+json"
_FORMATS = {"json", "application/json", FHIR_JSON, "application/fhir json"}
# Media ranges an answer in FHIR JSON satisfies; application/json+fhir is the DSTU2 name that
# older clients still send.
_JSON_RANGES = {FHIR_JSON, "application/json", "application/json+fhir", "application/*", "*/*"}
_ZERO_QUALITY = {"0", "0.", "0.0", "0.00", "0.000"}
FHIR_MAJOR_MINOR = FHIR_VERSION.rsplit(".", 1)[0]  # "4.3": what the fhirVersion parameter carries
_OUR_VERSIONS = {FHIR_MAJOR_MINOR, FHIR_VERSION}

# Health records are not to be kept by browsers or proxies: without it a browser may answer a
# read from its cache (heuristic freshness from Last-Modified) after the token was revoked.
NO_STORE = ("Cache-Control", "no-store")


def base_url(hospital_id: str) -> str:
    return f"{current_app.config['FHIRGATE_BASE_URL']}/fhir/{hospital_id}"


def accepts_this_server(accept: str) -> bool:
    """Whether an ``Accept`` header lets this server answer: one of its media ranges takes JSON
    (or anything), with a quality above 0 and no ``fhirVersion`` but this server's (FHIR R4B
    versioning.html#mt-version: ``application/fhir+json; fhirVersion=4.3``)."""
    if not accept.strip():
        return True
    for media_range in accept.split(","):
        media, *parameters = media_range.split(";")
        if media.strip().lower() not in _JSON_RANGES:
            continue
        values = {}
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            values[name.strip().lower()] = value.strip().strip('"')
        if values.get("q", "1").strip() in _ZERO_QUALITY:
            continue
        if values.get("fhirversion", FHIR_MAJOR_MINOR) in _OUR_VERSIONS:
            return True
    return False


def check_format() -> None:
    """Only JSON, and only R4B: ``_format`` or ``Accept`` asking for anything else gets 406."""
    wanted = request.args.get("_format")
    if wanted is not None and wanted.strip().lower() not in _FORMATS:
        raise FhirError.not_supported("Only JSON is supported (_format=json).", status=406)
    if not accepts_this_server(request.headers.get("Accept", "")):
        raise FhirError.not_supported(
            f"This server answers FHIR {FHIR_VERSION} (R4B) as JSON only: "
            f"Accept: {FHIR_JSON}; fhirVersion={FHIR_MAJOR_MINOR}.",
            status=406,
        )


def not_modified(stored: StoredResource) -> bool:
    """A conditional read (FHIR R4B http.html#cread, RFC 9110 §13.1) whose copy is current:
    ``If-None-Match`` names the version's ETag (weakly compared, or ``*``), or, without one,
    ``If-Modified-Since`` is no earlier than the last update (to the second HTTP dates have)."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or f'"{stored.version_id}"' in tags
    since = request.if_modified_since
    return since is not None and stored.last_updated.replace(microsecond=0) <= since


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
        body = exact_json.loads(raw)
    except ValueError as error:
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


def resource_response(
    stored: StoredResource, hospital_id: str, status: int = 200, *, location: bool = False, whole: bool = True
):
    """Serve a stored resource, honouring ``Prefer: return=`` on writes (FHIR R4B http.html#ops).
    ``whole=False``: a ``_summary``/``_elements`` subset, which carries no validator (its ETag
    would name the whole version: a later conditional read of it would get 304) and is always
    sent whole."""
    headers = resource_headers(stored, hospital_id, location=location)
    if not whole:
        headers.pop("ETag")
        headers.pop("Last-Modified")
    elif request.method in ("GET", "HEAD") and not_modified(stored):
        return _response(b"", 304, headers)
    prefer = request.headers.get("Prefer", "")
    if request.method in ("POST", "PUT", "PATCH") and "return=" in prefer:
        if "return=minimal" in prefer:
            return _response(b"", status, headers)
        if "return=OperationOutcome" in prefer:
            stored_note = Issue(INFORMATIONAL, "Stored.", severity="information")
            return json_response(operation_outcome([stored_note]), status, headers)
    return _response(stored.content or "", status, headers)
