"""The search index values of fhirgate's own AuditEvents, read straight off the event.

``fhir.search.extract`` walks the FHIRPath of each of AuditEvent's 22 search parameters over
the resource: about 130 µs of the audit writer's time per event, and the writer stores one
event for every FHIR request, on the same interpreter lock as the requests. ``audit_event``
fills only a few known elements, so this module reads those directly and converts them with
the same ``index_values`` functions ``extract`` uses. ``tests/fhir/test_audit_index.py`` holds the
result equal to ``extract``'s for every shape of event the writer produces; an element added
to ``audit_event`` that this module does not know fails that test.
"""

from __future__ import annotations

from typing import Any

import orjson

from fhir.search import index_values as v
from fhir.search.extract import IndexValues


def audit_index(event: dict[str, Any]) -> IndexValues:
    """What ``extract(event)`` returns, for an event built by ``fhir.audit.audit_event``."""
    out = IndexValues()
    agent = event["agent"][0]
    network = agent.get("network")
    if network:
        _string(out, "address", network["address"])
    _string(out, "agent-name", agent["name"])

    entities = event.get("entity") or []
    _token(out, "action", event["action"], "code")
    _token(out, "altid", agent["altId"], "string")
    for code, element in (("entity-role", "role"), ("entity-type", "type")):
        codings = [entity[element] for entity in entities if element in entity]
        out.tokens.extend(dict.fromkeys((code, *row) for c in codings for row in v.token_values(c, "Coding")))
    _token(out, "outcome", event["outcome"], "code")
    _token(out, "site", event["source"]["site"], "string")
    for coding in event["subtype"]:
        _token(out, "subtype", coding, "Coding")
    _token(out, "type", event["type"], "Coding")

    what = [row for entity in entities if "what" in entity for row in v.reference_values(entity["what"])]
    out.references.extend(dict.fromkeys(("entity", *row) for row in what))
    patients = dict.fromkeys(("patient", *row) for row in what if row[0] == "Patient")
    out.references.extend(patients)
    out.dates.extend(("date", *row) for row in v.date_ranges(event["recorded"]))
    # AuditEvent is in a Patient's compartment through its ``patient`` parameter alone.
    out.compartment_patients.update(target_id for _, _, target_id, _ in patients if target_id)
    return out


def _string(out: IndexValues, code: str, text: str) -> None:
    if normalized := v.normalize_string(text):
        out.strings.append((code, normalized, text[: v.STRING_MAX]))


# The token rows of each value seen: the same few codes, sites and clients recur in every event.
_TOKEN_ROWS: dict[tuple, tuple] = {}
_MAX_REMEMBERED = 4096


def _token(out: IndexValues, code: str, value: Any, hint: str) -> None:
    key = (code, value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS), hint)
    rows = _TOKEN_ROWS.get(key)
    if rows is None:
        rows = tuple(dict.fromkeys((code, *row) for row in v.token_values(value, hint)))
        if len(_TOKEN_ROWS) < _MAX_REMEMBERED:
            _TOKEN_ROWS[key] = rows
    out.tokens.extend(rows)
