"""``SqlRepository.append`` (the audit writer's COPY path) stores what ``create`` stores.

On PostgreSQL append has rows of its own; elsewhere it is ``create``. Both share the code that
sends rows, so the stored values are also checked against what the event says."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.timeutil import as_utc
from fhir.search.extract import extract
from fhir.storage import tables
from fhir.storage.sql import SqlRepository

EVENT = {
    "resourceType": "AuditEvent",
    "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
    "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}],
    "action": "R",
    "recorded": "2026-11-23T10:00:00.123456Z",
    "outcome": "0",
    "agent": [
        {"altId": "hk_1", "name": "hospital_key", "requestor": True, "network": {"address": "10.0.0.1"}}
    ],
    "source": {"observer": {"display": "fhirgate"}, "site": "general"},
    "entity": [
        {"what": {"reference": "Patient/p1"}, "role": {"code": "1"}},
        {"what": {"reference": "Observation/o1"}},
    ],
}
# Index rows of every kind the event has: strings, tokens, references, a date, a compartment.
KINDS = ("string", "token", "reference", "date")


def _rows(resource_id: str) -> dict[str, list[tuple]]:
    """Every stored row of the resource, its id and sequence numbers masked, in a stable order."""
    found = {}
    r, h = tables.resources.c, tables.history.c
    current = db.session.execute(select(tables.resources).where(r.id == resource_id)).one()._asdict()
    version = db.session.execute(select(tables.history).where(h.id == resource_id)).one()._asdict()
    assert current["created_seq"] == version["seq"]
    assert current["last_updated"] == version["last_updated"]
    for row in (current, version):
        row.pop("created_seq", None), row.pop("seq", None), row.pop("last_updated")
        row["id"] = "ID"
        row["content"] = row["content"].replace(resource_id, "ID")
    found["resource"], found["history"] = [tuple(current.items())], [tuple(version.items())]
    for kind in KINDS:
        table = tables.INDEX_TABLES[kind]
        rows = db.session.execute(select(table).where(table.c.resource_id == resource_id)).all()
        found[kind] = sorted(tuple("ID" if value == resource_id else value for value in row) for row in rows)
    comp = tables.compartments.c
    found["compartment"] = sorted(
        db.session.execute(
            select(comp.hospital_id, comp.patient_id).where(comp.resource_id == resource_id)
        ).all()
    )
    return found


def _without_meta_time(found: dict) -> dict:
    for key in ("resource", "history"):
        found[key] = [
            tuple(
                (name, value if name != "content" else value.split('"lastUpdated"')[0]) for name, value in row
            )
            for row in found[key]
        ]
    return found


def test_append_stores_the_rows_create_stores(ctx, make):
    make.hospital("general")
    repo = SqlRepository(db.session, "general")
    repo.create(copy.deepcopy(EVENT), resource_id="created-1", index=extract(EVENT))
    repo.append([(copy.deepcopy(EVENT), "appended-1", extract(EVENT))])
    db.session.commit()

    created, appended = _rows("created-1"), _rows("appended-1")
    assert all(created[kind] for kind in KINDS) and created["compartment"] == [("general", "p1")]
    assert _without_meta_time(appended) == _without_meta_time(created)

    recorded = datetime(2026, 11, 23, 10, 0, 0, 123456, UTC)
    (date_row,) = appended["date"]
    assert date_row[:4] == ("general", "AuditEvent", "ID", "date")
    assert [as_utc(moment) for moment in date_row[4:]] == [recorded, recorded + timedelta(microseconds=1)]
    assert ("general", "AuditEvent", "ID", "action", None, "R", None) in appended["token"]
    assert ("general", "AuditEvent", "ID", "entity", "Observation", "o1", "Observation/o1") in appended[
        "reference"
    ]
    stored = db.session.execute(
        select(tables.resources.c.last_updated).where(tables.resources.c.id == "appended-1")
    )
    assert abs(datetime.now(UTC) - as_utc(stored.scalar_one())) < timedelta(minutes=1)


def test_appended_resources_are_read_and_found_like_created_ones(ctx, make):
    make.hospital("general")
    repo = SqlRepository(db.session, "general")
    events = [copy.deepcopy(EVENT) for _ in range(3)]
    repo.append([(event, f"a-{n}", extract(event)) for n, event in enumerate(events)])
    db.session.commit()

    assert [repo.read("AuditEvent", f"a-{n}").version_id for n in range(3)] == [1, 1, 1]
    assert repo.vread("AuditEvent", "a-2", 1).content == repo.read("AuditEvent", "a-2").content
    found = repo.search("AuditEvent", [("patient", "p1"), ("date", "2026-11-23"), ("altid", "hk_1")])
    assert '"total":3' in found
