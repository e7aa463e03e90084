"""A hospital's newest ``fhir_history`` sequence number: the snapshot a search's pages share and
the point up to which a bulk export reads.

Written as ``max(seq) WHERE hospital_id = X``, PostgreSQL may read it backwards along the
primary key (``seq`` alone) and skip other hospitals' rows one by one until it meets one of
X's: when another hospital had written two million rows since X's last write (a busy
hospital's audit trail in a day), a search in the quiet hospital took 450 ms for that alone.
Bounded as a row value on both sides and ordered by ``(hospital_id, seq)``, the query has one
cheap way to be answered: one step into ``ix_fhir_history_hospital_seq`` from X's end.
The bounds select exactly X's rows: ``(h, s) > (X, 0)`` and ``(h, s) <= (X, MAX)`` hold
together only where ``h = X`` (every ``seq`` is positive).
"""

from __future__ import annotations

from sqlalchemy import Select, literal, select, tuple_

from fhir.storage import tables

MAX_SEQ = 2**63 - 1  # PostgreSQL's bigint

# For statements written as text: the hospital is the parameter ``$1``.
NEWEST_SEQ_SQL = (
    "SELECT h.seq FROM fhir_history AS h"
    " WHERE (h.hospital_id, h.seq) > ($1, 0) AND (h.hospital_id, h.seq) <= ($1, 9223372036854775807)"
    " ORDER BY h.hospital_id DESC, h.seq DESC LIMIT 1"
)


def newest_seq(hospital_id: str) -> Select:
    """The select of the hospital's newest ``seq`` (no row: the hospital has no history)."""
    h = tables.history.c
    columns = tuple_(h.hospital_id, h.seq)
    return (
        select(h.seq)
        .where(columns > tuple_(literal(hospital_id), literal(0)))
        .where(columns <= tuple_(literal(hospital_id), literal(MAX_SEQ)))
        .order_by(h.hospital_id.desc(), h.seq.desc())
        .limit(1)
    )
