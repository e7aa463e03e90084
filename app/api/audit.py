"""Hospital admin: the audit trail of the hospital's FHIR API."""

from __future__ import annotations

import base64
import binascii

import orjson
from flask import jsonify, request

from app.api import bp
from app.api.hospitals import hospital_for_admin
from app.errors import ApiError
from app.extensions import db
from app.sessions import require_user
from fhir.errors import FhirError
from fhir.storage.sql import SqlRepository

FILTERS = {"client": "altid", "outcome": "outcome", "patient": "patient", "interaction": "subtype"}
OUTCOMES = {"success": "0", "failure": "4,8"}


def event_summary(event: dict) -> dict:
    """The parts of a stored AuditEvent a person reads: who, when, from where, what, outcome."""
    agent = (event.get("agent") or [{}])[0]
    entities = event.get("entity") or []
    patients = [
        e["what"]["reference"].split("/", 1)[1]
        for e in entities
        if e.get("role", {}).get("code") == "1" and "what" in e
    ]
    query = next((e.get("query") for e in entities if e.get("query")), None)
    try:
        query = base64.b64decode(query).decode() if query else None
    except (binascii.Error, UnicodeDecodeError):
        query = None
    return {
        "id": event.get("id"),
        "recorded": event.get("recorded"),
        "client": agent.get("altId"),
        "client_kind": agent.get("name"),
        "address": (agent.get("network") or {}).get("address"),
        "patient": patients[0] if patients else None,
        "interaction": ((event.get("subtype") or [{}])[0]).get("code"),
        "outcome": "success" if event.get("outcome") == "0" else "failure",
        "detail": event.get("outcomeDesc"),
        "query": query,
        "resources": [e["what"]["reference"] for e in entities if "what" in e and "role" not in e],
    }


@bp.get("/hospitals/<hid>/audit-events")
@require_user("hospital-admin", "superadmin")
def audit_events(hid: str):
    """Newest first; filters: client, outcome (success|failure), patient, interaction.

    Newest by id: the writer names each event with a UUIDv7 of its ``recorded`` moment
    (``fhir.storage.sql.time_ordered_id``), so the primary key gives a page of a million events
    in recorded order (to the millisecond) without sorting them, where ``date`` (an index row
    of its own) made every page sort them all. No total: the list shows none."""
    hospital = hospital_for_admin(hid)
    args = [("_sort", "-_id"), ("_total", "none"), ("_count", request.args.get("count", "50"))]
    for name, param in FILTERS.items():
        value = request.args.get(name)
        if value:
            if name == "outcome":
                if value not in OUTCOMES:
                    raise ApiError(400, "outcome is success or failure.")
                value = OUTCOMES[value]
            args.append((param, value))
    try:
        bundle = orjson.loads(SqlRepository(db.session, hospital.id).search("AuditEvent", args))
    except FhirError as error:
        raise ApiError(400, error.issues[0].diagnostics if error.issues else "Bad filter.") from None
    return jsonify([event_summary(entry["resource"]) for entry in bundle.get("entry", [])])
