"""Walking one hospital's ``fhir_history`` newest first, along its own index entries.

Written as ``WHERE hospital_id = X ORDER BY seq DESC`` (or ``max(seq) WHERE hospital_id = X``),
PostgreSQL may read the primary key (``seq`` alone) backwards and skip other hospitals' rows one
by one until it meets X's: when another hospital had written two million rows since X's last
write (a busy hospital's audit trail in a day), X's newest ``seq`` took 450 ms and a page of its
``_history`` 4 s. Bounded as row values on both sides and ordered by the index's own columns,
the walk has one cheap way to be done: down ``ix_fhir_history_hospital_seq`` (or, for one type,
``ix_fhir_history_type_seq``) from X's end. The bounds select exactly X's rows (of the type):
``(h, s) > (X, 0)`` and ``(h, s) < (X, before)`` hold together only where ``h = X`` (every
``seq`` is positive).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, literal, select, tuple_

from fhir.storage import tables

MAX_SEQ = 2**63 - 1  # PostgreSQL's bigint

# The newest seq, for statements written as text: the hospital is the parameter ``$1``.
NEWEST_SEQ_SQL = (
    "SELECT h.seq FROM fhir_history AS h"
    " WHERE (h.hospital_id, h.seq) > ($1, 0) AND (h.hospital_id, h.seq) <= ($1, 9223372036854775807)"
    " ORDER BY h.hospital_id DESC, h.seq DESC LIMIT 1"
)


def hospital_rows(
    hospital_id: str, resource_type: str | None = None, before_seq: int | None = None
) -> tuple[list[ColumnElement], list[ColumnElement]]:
    """The conditions selecting the hospital's history rows (of the type; below ``before_seq``),
    and the ORDER BY that walks them newest first along the index."""
    h = tables.history.c
    key = [h.hospital_id, *([h.resource_type] if resource_type else []), h.seq]
    fixed = [literal(hospital_id), *([literal(resource_type)] if resource_type else [])]
    columns = tuple_(*key)
    upper = tuple_(*fixed, literal(MAX_SEQ if before_seq is None else before_seq))
    conditions = [
        columns > tuple_(*fixed, literal(0)),
        columns <= upper if before_seq is None else columns < upper,
    ]
    return conditions, [column.desc() for column in key]


def newest_seq(hospital_id: str) -> Select:
    """The select of the hospital's newest ``seq`` (no row: the hospital has no history)."""
    conditions, order = hospital_rows(hospital_id)
    return select(tables.history.c.seq).where(*conditions).order_by(*order).limit(1)
