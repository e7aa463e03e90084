"""Hospital admin: the audit trail of the hospital's FHIR API."""

from __future__ import annotations

import base64
import binascii

from flask import jsonify, request

from app.api import bp
from app.api.hospitals import hospital_for_admin
from app.errors import ApiError
from app.extensions import db
from app.sessions import require_user
from fhir.audit_listing import AuditFilters, newest_events
from fhir.search.request import MAX_COUNT

OUTCOMES = ("success", "failure")
MAX_FILTER_LENGTH = 256  # the longest value a token index row holds


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
    """Newest first; filters: client, outcome (success|failure), patient, interaction; count
    (50, at most 1,000). Newest by id: the writer names each event with a UUIDv7 of its
    ``recorded`` moment (``fhir.storage.sql.time_ordered_id``). No total: the list shows none.
    ``fhir.audit_listing`` walks the most selective filter's index from the newest event back."""
    hospital = hospital_for_admin(hid)
    raw_count = request.args.get("count", "50")
    if not (raw_count.isascii() and raw_count.isdigit() and 1 <= int(raw_count) <= MAX_COUNT):
        raise ApiError(400, f"count is a whole number from 1 to {MAX_COUNT}.")
    outcome = request.args.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        raise ApiError(400, "outcome is success or failure.")
    filters = AuditFilters(
        client=_text_filter("client"),
        patient=_text_filter("patient"),
        interaction=_text_filter("interaction"),
        failed=None if outcome is None else outcome == "failure",
    )
    events = newest_events(db.session, hospital.id, filters, int(raw_count))
    return jsonify([event_summary(event) for event in events])


def _text_filter(name: str) -> str | None:
    value = request.args.get(name) or None
    if value is not None and len(value) > MAX_FILTER_LENGTH:
        raise ApiError(400, f"{name} is at most {MAX_FILTER_LENGTH} characters.")
    return value
