"""The FHIR REST routes under ``/fhir/<hospital>``: parse, call one function, render."""

from __future__ import annotations

import orjson
from flask import Blueprint, current_app, g, request
from werkzeug.routing import BaseConverter

from app.direct_reads import direct_reads
from app.extensions import db
from app.integrations.gateway import connected_upstream
from app.lanes import claim_heavy_slot, is_heavy
from app.models import Hospital
from fhir import interactions
from fhir.access import current_principal, repository_for
from fhir.audit import INTERACTIONS, PUBLIC_ENDPOINTS, record_request
from fhir.bundles import process_bundle
from fhir.capability import capability_statement
from fhir.conditional import conditional_create, conditional_delete, conditional_update
from fhir.errors import FhirError
from fhir.fair_share import admit_fair_share, bundle_weight, charge_fair_share, weigh_request
from fhir.history_page import history_bundle
from fhir.http import (
    NO_STORE,
    PATCH_TYPE,
    _response,
    base_url,
    check_format,
    json_body,
    json_response,
    resource_response,
)
from fhir.model_classes import is_resource_type
from fhir.retry import retried
from fhir.search.registry import patient_compartment_params
from fhir.subsetting import read_subset, subset_stored
from fhir.upstream_proxy import forward
from oauth import smart_configuration


class ResourceTypeConverter(BaseConverter):
    """A URL segment shaped like a resource type (``Observation``), never ``_history`` or
    ``$everything``: ``Patient/{id}/{type}`` must not catch ``Patient/{id}/_history``."""

    regex = "[A-Z][A-Za-z]{1,63}"


bp = Blueprint("fhir", __name__, url_prefix="/fhir/<hospital_id>")
bp.record_once(lambda state: state.app.url_map.converters.setdefault("fhirtype", ResourceTypeConverter))
bp.after_request(record_request)
bp.after_request(charge_fair_share)


@bp.after_request
def _not_stored(response):
    response.headers.setdefault(*NO_STORE)  # the discovery documents set their own
    return response


@bp.url_value_preprocessor
def _pull_hospital(endpoint, values):
    g.hospital_id = values.pop("hospital_id")


# A read is single statements (the revocation epoch, the resource): without a transaction it
# saves the BEGIN and ROLLBACK round trips. (Every statement has its timeout from its connection.)
# On PostgreSQL a read's statements go over app.direct_reads and need no session connection.
_SINGLE_STATEMENT_READS = frozenset({"fhir.read", "fhir.vread"})


@bp.before_request
def _check_hospital_and_format():
    if request.endpoint in _SINGLE_STATEMENT_READS and not (
        request.endpoint == "fhir.read" and direct_reads().available
    ):
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    hospital_id = g.hospital_id
    # Hospitals are never deleted, so a worker remembers the ones it has seen.
    known = current_app.extensions.setdefault("fhirgate_known_hospitals", set())
    if hospital_id not in known:
        if len(hospital_id) > 40 or db.session.get(Hospital, hospital_id) is None:
            raise FhirError.not_found("No FHIR server at this address.")
        known.add(hospital_id)
    g.hospital_known = True
    if request.endpoint != "fhir.bulk_file":  # an export's file is ndjson, whatever else is accepted
        check_format()
    upstream = connected_upstream(hospital_id)
    if upstream is not None and request.endpoint != "fhir.smart_configuration_document":  # tokens are ours
        return forward(upstream)  # a connected hospital: its upstream EHR answers
    if request.endpoint not in PUBLIC_ENDPOINTS:
        principal = current_principal(hospital_id)  # so that strangers never hold a heavy slot
        heavy = is_heavy(request.environ)
        if heavy:
            claim_heavy_slot()  # before the share is charged: a refusal here costs the client nothing
        admit_fair_share(principal, _share_interaction(request.endpoint or ""), heavy=heavy)


# A Bulk Data status poll or cancel is one row's look-up: it costs what a read does, not what the
# export (its kick-off and its downloads) does.
_READ_LIKE = frozenset({"fhir.bulk_status", "fhir.bulk_cancel"})


def _share_interaction(endpoint: str) -> str:
    return "read" if endpoint in _READ_LIKE else INTERACTIONS.get(endpoint, "unknown")


def _repo():
    return repository_for(current_principal(g.hospital_id))


def _type(resource_type: str) -> str:
    if not is_resource_type(resource_type):
        raise FhirError.not_found(f"Unknown resource type {resource_type[:64]!r}.")
    return resource_type


def _subset_response(stored):
    """A read's answer, as its ``_summary`` or ``_elements`` ask."""
    summary, elements = read_subset(
        stored.resource_type, list(request.args.items(multi=True)), lenient=_lenient()
    )
    if summary is None and not elements:
        return resource_response(stored, g.hospital_id)
    return resource_response(subset_stored(stored, summary, elements), g.hospital_id, whole=False)


@bp.get("/<resource_type>/<resource_id>")
def read(resource_type, resource_id):
    repo = repository_for(current_principal(g.hospital_id), committed_only=True)
    return _subset_response(interactions.read(repo, _type(resource_type), resource_id))


@bp.get("/<resource_type>/<resource_id>/_history/<version>")
def vread(resource_type, resource_id, version):
    return _subset_response(interactions.vread(_repo(), _type(resource_type), resource_id, version))


def _lenient() -> bool:
    return "handling=lenient" in request.headers.get("Prefer", "")


def _search_response(resource_type: str, args: list[tuple[str, str]]):
    text = _repo().search(_type(resource_type), args, lenient=_lenient())
    return _response(text, 200)


@bp.get("")
@bp.get("/")
def system_search():
    """search.html#level: GET [base]?_type=A,B&params, the types' matches in one searchset."""
    return _response(_repo().search_system(list(request.args.items(multi=True)), lenient=_lenient()), 200)


@bp.post("/_search")
def system_search_post():
    """POST [base]/_search with form-encoded parameters (and any in the URL)."""
    if request.mimetype != "application/x-www-form-urlencoded" and request.get_data():
        raise FhirError.not_supported("POST _search takes application/x-www-form-urlencoded.", status=415)
    args = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
    return _response(_repo().search_system(args, lenient=_lenient()), 200)


@bp.get("/<resource_type>")
def search(resource_type):
    """FHIR R4B search.html#search: GET [base]/[type]?params."""
    return _search_response(resource_type, list(request.args.items(multi=True)))


@bp.get("/Patient/<patient_id>/<fhirtype:resource_type>")
def compartment_search(patient_id, resource_type):
    """search.html#compartments: GET Patient/{id}/{type}?params, the type's resources in that
    Patient's compartment (R4B's CompartmentDefinition) that the parameters match."""
    interactions.check_id(patient_id)
    _type(resource_type)
    if resource_type != "Patient" and not patient_compartment_params(resource_type):
        raise FhirError.invalid(f"{resource_type} is not in the Patient compartment; search it at its type.")
    args = list(request.args.items(multi=True))
    text = _repo().search(resource_type, args, lenient=_lenient(), compartment=patient_id)
    return _response(text, 200)


@bp.post("/<resource_type>/_search")
def search_post(resource_type):
    """POST [base]/[type]/_search with form-encoded parameters (and any in the URL)."""
    if request.mimetype != "application/x-www-form-urlencoded" and request.get_data():
        raise FhirError.not_supported("POST _search takes application/x-www-form-urlencoded.", status=415)
    args = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
    return _search_response(resource_type, args)


@bp.post("/<resource_type>")
@retried
def create(resource_type):
    repo = _repo()
    if set(request.args) - {"_format", "_pretty"}:
        # Some clients put criteria in the URL for a conditional create; FHIR takes them only
        # from If-None-Exist, and ignoring them silently would make duplicates.
        raise FhirError.invalid("Search criteria in a create's URL are not used: send them in If-None-Exist.")
    criteria = request.headers.get("If-None-Exist")
    if criteria:
        stored, created = conditional_create(repo, _type(resource_type), json_body(), criteria.lstrip("?"))
    else:
        stored, created = interactions.create(repo, _type(resource_type), json_body()), True
    db.session.commit()
    return resource_response(stored, g.hospital_id, 201 if created else 200, location=created)


def _criteria(interaction: str) -> str:
    """The search criteria of a conditional update or delete: the URL's query string."""
    criteria = request.query_string.decode("utf-8", "replace")
    if not criteria:
        raise FhirError.invalid(f"A {interaction} on a type needs search criteria in the URL.")
    return criteria


@bp.put("/<resource_type>")
@retried
def conditional_update_route(resource_type):
    repo = _repo()
    criteria = _criteria("conditional update")
    stored, created = conditional_update(
        repo, _type(resource_type), criteria, json_body(), request.headers.get("If-Match")
    )
    db.session.commit()
    return resource_response(stored, g.hospital_id, 201 if created else 200, location=True)


@bp.delete("/<resource_type>")
@retried
def conditional_delete_route(resource_type):
    repo = _repo()
    stored = conditional_delete(repo, _type(resource_type), _criteria("conditional delete"))
    db.session.commit()
    return _response(b"", 204, {"ETag": stored.etag} if stored else {})


@bp.post("")
@bp.post("/")
@retried
def batch_or_transaction():
    """FHIR R4B http.html#transaction: POST a batch or transaction Bundle to the base."""
    repo = _repo()
    body = json_body()
    if isinstance(body, dict):
        weigh_request(bundle_weight(body.get("entry")))
    with_body = "return=minimal" not in request.headers.get("Prefer", "")
    result = process_bundle(
        repo,
        body,
        base_url(g.hospital_id),
        lambda resource_type, args: repo.search(resource_type, args, lenient=_lenient()),
        with_body=with_body,
    )
    db.session.commit()
    return _response(result, 200)


@bp.get("/Patient/<patient_id>/$everything")
def everything(patient_id):
    """FHIR R4B patient-operation-everything: the patient and their compartment."""
    interactions.check_id(patient_id)
    args = list(request.args.items(multi=True))
    return _response(_repo().everything(patient_id, args, lenient=_lenient()), 200)


@bp.get("/metadata")
def metadata():
    """The CapabilityStatement, no token needed (FHIR R4B http.html#capabilities)."""
    return json_response(capability_statement(g.hospital_id))


@bp.get("/.well-known/smart-configuration")
def smart_configuration_document():
    """SMART App Launch 2.x discovery, no token needed; plain JSON whatever the Accept."""
    response = current_app.response_class(orjson.dumps(smart_configuration()), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.put("/<resource_type>/<resource_id>")
@retried
def update(resource_type, resource_id):
    repo = _repo()
    stored, created = interactions.update(
        repo, _type(resource_type), resource_id, json_body(), request.headers.get("If-Match")
    )
    db.session.commit()
    return resource_response(stored, g.hospital_id, 201 if created else 200, location=True)


@bp.patch("/<resource_type>/<resource_id>")
@retried
def patch(resource_type, resource_id):
    repo = _repo()
    stored = interactions.patch(
        repo, _type(resource_type), resource_id, json_body((PATCH_TYPE,)), request.headers.get("If-Match")
    )
    db.session.commit()
    return resource_response(stored, g.hospital_id, 200, location=True)


@bp.delete("/<resource_type>/<resource_id>")
@retried
def delete(resource_type, resource_id):
    repo = _repo()
    stored = interactions.delete(repo, _type(resource_type), resource_id)
    db.session.commit()
    headers = {"ETag": stored.etag} if stored else {}
    return _response(b"", 204, headers)


def _history_response(resource_type=None, resource_id=None):
    bundle = history_bundle(
        _repo(),
        base_url(g.hospital_id),
        request.args.items(multi=True),
        lenient=_lenient(),
        resource_type=resource_type,
        resource_id=resource_id,
    )
    return _response(bundle, 200)


@bp.get("/_history")
def hospital_history():
    return _history_response()


@bp.get("/<resource_type>/_history")
def type_history(resource_type):
    return _history_response(_type(resource_type))


@bp.get("/<resource_type>/<resource_id>/_history")
def instance_history(resource_type, resource_id):
    interactions.check_id(resource_id)
    return _history_response(_type(resource_type), resource_id)


# The Bulk Data routes join this blueprint (they need its token, share and audit handling).
from fhir.bulk import views as _bulk_views  # noqa: E402,F401
