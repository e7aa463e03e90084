"""Rebuild the search index and the patient compartments of stored resources from their JSON.

Index rows are made when a resource is written, from the search definitions of the day. When the
definitions change (a release moves to another FHIR version's, as 0.x moved from R4's to R4B's:
new parameters, changed expressions, Task leaving the patient compartment), the rows of resources
written before no longer say what a search of today finds: ``fhirgate reindex`` makes them again.
It works in batches of current resources, each batch in a transaction of its own (their rows
deleted and inserted), so that a hospital stays searchable while it runs.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import and_, delete, false, select, tuple_
from sqlalchemy.orm import Session

from fhir import exact_json
from fhir.search.extract import extract
from fhir.storage import tables
from fhir.storage.sql import index_rows
from fhir.storage.writes import bulk_insert

BATCH = 500


def reindex_hospital(session: Session, hospital_id: str) -> int:
    """Rebuild the index and compartment rows of every current resource of a hospital; the count."""
    r = tables.resources.c
    done, after = 0, ("", "")
    while True:
        rows = session.execute(
            select(r.resource_type, r.id, r.content)
            .where(r.hospital_id == hospital_id, r.deleted == false(), tuple_(r.resource_type, r.id) > after)
            .order_by(r.resource_type, r.id)
            .limit(BATCH)
            # a write to one of them waits for this batch: else its fresh rows could be replaced
            # by rows made from the content read here, before it
            .with_for_update()
        ).all()
        if not rows:
            return done
        owners = [(row.resource_type, row.id) for row in rows]
        for table in (*tables.INDEX_TABLES.values(), tables.compartments):
            c = table.c
            session.execute(
                delete(table).where(
                    and_(c.hospital_id == hospital_id, tuple_(c.resource_type, c.resource_id).in_(owners))
                )
            )
        index: dict[str, list[tuple]] = defaultdict(list)
        compartments: list[tuple] = []
        for row in rows:
            values = extract(exact_json.loads(row.content))
            index_rows((hospital_id, row.resource_type, row.id), values, index, compartments)
        for kind, kind_rows in index.items():
            bulk_insert(session, tables.INDEX_TABLES[kind], kind_rows)
        bulk_insert(session, tables.compartments, compartments)
        session.commit()
        done += len(rows)
        after = owners[-1]
