"""Turning a ``SearchQuery`` into SQL over the index tables.

Every value is a bound parameter; LIKE patterns escape ``%``, ``_`` and ``\\``. Each
criterion becomes ``resources.id IN (SELECT resource_id FROM fhir_idx_... WHERE hospital,
type, param, value...)``, which the lookup indexes answer directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, false, func, literal, not_, or_, select, true
from sqlalchemy.sql import Select

from fhir.errors import FhirError
from fhir.search.composites import composite_sources
from fhir.search.index_values import normalize_string
from fhir.search.query_values import (
    parse_date_value,
    parse_number_value,
    parse_quantity_value,
    parse_reference_value,
    parse_token_value,
)
from fhir.search.registry import indexed_params, stored_under
from fhir.search.request import Criterion, SearchQuery, SortKey, split_composite
from fhir.storage import tables

Restriction = Callable[[str, ColumnElement], ColumnElement | None]


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


NEVER_NULL_SORTS = frozenset({"_id", "_lastUpdated"})


def _date_clause(prefix: str, low, high, lo: datetime, hi: datetime) -> ColumnElement:
    """Resource range [low, high) against the search range [lo, hi) (search.html#prefix)."""
    if prefix == "eq":
        return and_(low >= lo, high <= hi)
    if prefix == "ne":
        return not_(and_(low >= lo, high <= hi))
    if prefix == "gt":
        return high > hi
    if prefix == "lt":
        return low < lo
    if prefix == "ge":
        return high > lo
    if prefix == "le":
        return low < hi
    if prefix == "sa":
        return low >= hi
    if prefix == "eb":
        return high <= lo
    # ap: within 10% of the distance from now, at least a day.
    slack = max(timedelta(days=1), abs(datetime.now(UTC) - lo) / 10)
    try:
        upper = hi + slack
    except OverflowError:
        upper = datetime.max.replace(tzinfo=UTC)
    try:
        lower = lo - slack
    except OverflowError:
        lower = datetime.min.replace(tzinfo=UTC)
    return and_(low < upper, high > lower)


def _number_clause(prefix: str, stored, value: Decimal, lo: Decimal, hi: Decimal) -> ColumnElement:
    """Compare the resource's value with the search value (``eq``: within its precision)."""
    if prefix == "eq":
        return and_(stored >= lo, stored < hi)
    if prefix == "ne":
        return not_(and_(stored >= lo, stored < hi))
    if prefix in ("gt", "sa"):
        return stored > value
    if prefix in ("lt", "eb"):
        return stored < value
    if prefix == "ge":
        return stored >= value
    if prefix == "le":
        return stored <= value
    slack = abs(value) / 10  # ap: within 10% of the value
    return and_(stored >= value - slack, stored <= value + slack)


def restrict_mixed_types(restrict: Restriction, type_column, id_column, types) -> ColumnElement:
    """Apply a per-type restriction to rows of several resource types at once."""
    clauses = []
    for resource_type in types:
        clause = restrict(resource_type, id_column)
        clauses.append(
            type_column == resource_type if clause is None else and_(type_column == resource_type, clause)
        )
    return or_(*clauses)


class SearchBuilder:
    """SQL for one hospital's searches, narrowed by an optional access restriction."""

    def __init__(self, hospital_id: str, base_url: str, restrict: Restriction | None = None):
        self.hospital_id = hospital_id
        self.base_url = base_url
        self.restrict = restrict

    # -- criteria ---------------------------------------------------------------------
    def owned(self, table, resource_type: str, param: str) -> list[ColumnElement]:
        """The index rows of ``param`` on ``resource_type``, wherever the registry stores them."""
        c = table.c
        stored = stored_under(resource_type, param)
        clauses = [c.hospital_id == self.hospital_id, c.resource_type == resource_type]
        clauses.append(c.param == stored.codes[0] if len(stored.codes) == 1 else c.param.in_(stored.codes))
        if stored.target_type:
            clauses.append(c.target_type == stored.target_type)
        return clauses

    def _value_clause(self, criterion: Criterion, table, raw: str) -> ColumnElement:
        c = table.c
        kind, modifier = criterion.type, criterion.modifier
        if kind == "string":
            if modifier == "exact":
                return c.exact == raw[:200]
            pattern = like_escape(normalize_string(raw))
            return c.value.like(f"%{pattern}%" if modifier == "contains" else f"{pattern}%", escape="\\")
        if kind == "token":
            if modifier == "text":
                return c.text.like(f"{like_escape(normalize_string(raw))}%", escape="\\")
            system, code, system_given = parse_token_value(raw)
            clauses = []
            if code is not None:
                clauses.append(c.code == code[:256])
            if system_given:
                clauses.append(c.system.is_(None) if not system else c.system == system[:256])
            return and_(*clauses) if clauses else true()
        if kind == "reference":
            target_type, target_id = parse_reference_value(raw, self.base_url)
            if "://" in target_id:
                return c.reference == raw[:512]
            if modifier and modifier != "missing":
                target_type = modifier
            clause = c.target_id == target_id[:64]
            return and_(clause, c.target_type == target_type) if target_type else clause
        if kind == "date":
            prefix, lo, hi = parse_date_value(raw)
            return _date_clause(prefix, c.low, c.high, lo, hi)
        if kind == "number":
            prefix, value, lo, hi = parse_number_value(raw)
            return _number_clause(prefix, c.value, value, lo, hi)
        if kind == "quantity":
            q = parse_quantity_value(raw)
            clause = _number_clause(q.prefix, c.value, q.value, q.low, q.high)
            if q.system:
                clause = and_(clause, c.system == q.system, c.code == q.code)
            elif q.code:
                clause = and_(clause, or_(c.code == q.code, c.unit == q.code))
            return clause
        if kind == "uri":
            if modifier == "below":
                return c.value.like(f"{like_escape(raw)}%", escape="\\")
            if modifier == "above":
                # The stored uri must be a prefix of the value (compared exactly, not LIKE).
                return func.substr(literal(raw[:512]), 1, func.length(c.value)) == c.value
            return c.value == raw[:512]
        raise FhirError.not_supported(f"Searching by {criterion.name} ({kind}) is not supported.")

    def _special(self, criterion: Criterion, resource_type: str, r) -> ColumnElement:
        if criterion.name == "_id":
            return r.id.in_([v[:64] for v in criterion.values])
        clauses = []
        for raw in criterion.values:
            prefix, lo, hi = parse_date_value(raw)
            clauses.append(
                # A point in time: its range is [t, t] (off by a microsecond at the edges only).
                _date_clause(prefix, r.last_updated, r.last_updated, lo, hi)
            )
        return or_(*clauses)

    def _criterion(self, criterion: Criterion, resource_type: str, id_column) -> ColumnElement:
        """The condition one criterion puts on ``id_column`` (ids of ``resource_type``)."""
        if criterion.hops:
            return self._linked(criterion, resource_type, id_column)
        if criterion.modifier in ("of-type", "identifier"):
            return self._token_rows_of(criterion, resource_type, id_column)
        if criterion.type == "composite":
            return self._composite(criterion, resource_type, id_column)
        table = tables.INDEX_TABLES[criterion.type]
        owned = self.owned(table, resource_type, criterion.name)
        if criterion.modifier == "missing":
            has_values = id_column.in_(select(table.c.resource_id).where(*owned))
            wanted = criterion.values[-1].lower()
            if wanted not in ("true", "false"):
                raise FhirError.invalid(":missing takes true or false.")
            return not_(has_values) if wanted == "true" else has_values
        values = or_(*(self._value_clause(criterion, table, raw) for raw in criterion.values))
        if criterion.modifier == "not":
            return not_(id_column.in_(select(table.c.resource_id).where(*owned, values)))
        return id_column.in_(select(table.c.resource_id).where(*owned, values))

    def _linked(self, criterion: Criterion, resource_type: str, id_column) -> ColumnElement:
        """A chain or ``_has`` link: the resources of the next type that match the rest, each
        within what the searcher may see, joined through the reference index."""
        hop, rest = criterion.hops[0], replace(criterion, hops=criterion.hops[1:])
        linked = tables.resources.alias()
        matching = select(linked.c.id).where(
            linked.c.hospital_id == self.hospital_id,
            linked.c.resource_type == hop.resource_type,
            linked.c.deleted == false(),
            self._condition(rest, hop.resource_type, linked),
            *self.restriction(hop.resource_type, linked.c.id),
        )
        ref = tables.idx_reference.c
        if hop.reverse:  # _has: hop.resource_type's hop.param points at resource_type
            return id_column.in_(
                select(ref.target_id).where(
                    *self.owned(tables.idx_reference, hop.resource_type, hop.param.code),
                    ref.target_type == resource_type,
                    ref.resource_id.in_(matching),
                )
            )
        return id_column.in_(
            select(ref.resource_id).where(
                *self.owned(tables.idx_reference, resource_type, hop.param.code),
                ref.target_type == hop.resource_type,
                ref.target_id.in_(matching),
            )
        )

    def _condition(self, criterion: Criterion, resource_type: str, resources_table) -> ColumnElement:
        """One criterion on the rows of ``resources_table`` (``fhir_resources`` or an alias)."""
        if criterion.param is None and not criterion.hops:
            return self._special(criterion, resource_type, resources_table.c)
        return self._criterion(criterion, resource_type, resources_table.c.id)

    def _token_rows_of(self, criterion: Criterion, resource_type: str, id_column) -> ColumnElement:
        """``identifier:of-type=system|code|value`` and ``subject:identifier=system|value``:
        token rows the extractor writes under ``param:modifier`` (fhir.search.extract)."""
        c = tables.idx_token.c
        stored = stored_under(resource_type, criterion.name)
        clauses = [
            c.hospital_id == self.hospital_id,
            c.resource_type == resource_type,
            c.param.in_([f"{code}:{criterion.modifier}" for code in stored.codes]),
        ]
        values = []
        for raw in criterion.values:
            if criterion.modifier == "of-type":
                parts = raw.split("|")
                if len(parts) != 3 or not all(parts):
                    raise FhirError.invalid(f":of-type takes system|code|value, got {raw[:80]!r}.")
                system, code, identifier = parts
                values.append(
                    and_(
                        c.system == system[:256],
                        c.code == code[:256],
                        c.text == identifier[:256],
                    )
                )
            else:
                system, identifier, system_given = parse_token_value(raw)
                if identifier is None:
                    raise FhirError.invalid(f":identifier takes [system|]value, got {raw[:80]!r}.")
                clause = c.code == identifier[:256]
                if system_given:
                    clause = and_(clause, c.system.is_(None) if not system else c.system == system[:256])
                values.append(clause)
        if criterion.modifier == "identifier" and stored.target_type:
            # patient:identifier: a reference whose literal or type names another type is not the patient's
            clauses.append(or_(c.text.is_(None), c.text == stored.target_type))
        return id_column.in_(select(c.resource_id).where(*clauses, or_(*values)))

    def _composite(self, criterion: Criterion, resource_type: str, id_column) -> ColumnElement:
        """``code-value-quantity=http://loinc.org|8480-6$gt100`` (search.html#composite): both
        parts matched by one element of the resource (``fhir.search.composites``)."""
        c = tables.idx_composite.c
        value_kind = criterion.param.components[1][0]
        sources = composite_sources(resource_type, criterion.name)
        matches = []
        for raw in criterion.values:
            parts = split_composite(raw)
            if parts is None:
                raise FhirError.invalid(f"{criterion.name} takes token$value, got {raw[:80]!r}.")
            token, rest = parts
            system, code, system_given = parse_token_value(token)
            for source in sources:
                if source.parts:  # the resource's own code and value, through their indexes
                    token_param, value_param = source.parts
                    params = indexed_params(resource_type)
                    matches.append(
                        and_(
                            self._criterion(
                                Criterion(token_param, "token", params[token_param], None, (token,)),
                                resource_type,
                                id_column,
                            ),
                            self._criterion(
                                Criterion(value_param, value_kind, params[value_param], None, (rest,)),
                                resource_type,
                                id_column,
                            ),
                        )
                    )
                    continue
                clauses = [c.code == code[:256]] if code is not None else []
                if system_given:
                    clauses.append(c.system.is_(None) if not system else c.system == system[:256])
                rows = select(c.resource_id).where(
                    c.hospital_id == self.hospital_id,
                    c.resource_type == resource_type,
                    c.param == source.rows,
                    *clauses,
                    self._composite_value(value_kind, rest),
                )
                matches.append(id_column.in_(rows))
        return or_(*matches)

    def _composite_value(self, kind: str, raw: str) -> ColumnElement:
        c = tables.idx_composite.c
        if kind == "token":
            system, code, system_given = parse_token_value(raw)
            clauses = [c.value_code == code[:256]] if code is not None else []
            if system_given:
                clauses.append(c.value_system.is_(None) if not system else c.value_system == system[:256])
            return and_(*clauses) if clauses else c.value_code.isnot(None)
        if kind == "quantity":
            q = parse_quantity_value(raw)
            clause = and_(
                c.value_number.isnot(None), _number_clause(q.prefix, c.value_number, q.value, q.low, q.high)
            )
            if q.system:
                return and_(clause, c.value_system == q.system, c.value_code == q.code)
            if q.code:
                return and_(clause, or_(c.value_code == q.code, c.value_unit == q.code))
            return clause
        if kind == "date":
            prefix, lo, hi = parse_date_value(raw)
            return and_(c.value_low.isnot(None), _date_clause(prefix, c.value_low, c.value_high, lo, hi))
        pattern = like_escape(normalize_string(raw))
        return c.value_string.like(f"{pattern}%", escape="\\")

    def restriction(self, resource_type: str, id_column) -> list[ColumnElement]:
        clause = self.restrict(resource_type, id_column) if self.restrict else None
        return [] if clause is None else [clause]

    def criteria(self, query: SearchQuery) -> ColumnElement:
        """All of the query's criteria on ``fhir_resources`` rows (a ``_typeFilter``'s)."""
        conditions = (self._condition(c, query.resource_type, tables.resources) for c in query.criteria)
        return and_(true(), *conditions)

    # -- whole queries ----------------------------------------------------------------
    def matches(self, query: SearchQuery, snapshot: int | None = None) -> list[ColumnElement]:
        """The WHERE clauses selecting the query's matches among ``fhir_resources``."""
        r = tables.resources.c
        clauses = [
            r.hospital_id == self.hospital_id,
            r.resource_type == query.resource_type,
            r.deleted == false(),
            *self.restriction(query.resource_type, r.id),
        ]
        if snapshot is not None:
            clauses.append(r.created_seq <= snapshot)
        if query.compartment is not None:
            comp = tables.compartments.c
            members = select(comp.resource_id).where(
                comp.hospital_id == self.hospital_id,
                comp.patient_id == query.compartment,
                comp.resource_type == query.resource_type,
            )
            clauses.append(r.id.in_(members))
        for criterion in query.criteria:
            clauses.append(self._condition(criterion, query.resource_type, tables.resources))
        return clauses

    def _sort_expression(self, key: SortKey, resource_type: str):
        r = tables.resources.c
        if key.name == "_id":
            return r.id
        if key.name == "_lastUpdated":
            return r.last_updated
        table = tables.INDEX_TABLES[key.type]
        c = table.c
        columns = {"string": "value", "token": "code", "uri": "value", "number": "value", "quantity": "value"}
        column = c[columns[key.type]] if key.type in columns else (c.high if key.descending else c.low)
        aggregate = func.max(column) if key.descending else func.min(column)
        return (
            select(aggregate)
            .where(*self.owned(table, resource_type, key.name), c.resource_id == r.id)
            .scalar_subquery()
        )

    def page(self, query: SearchQuery, *, offset: int, snapshot: int | None) -> Select:
        r = tables.resources.c
        order = []
        for key in query.sort:
            expression = self._sort_expression(key, query.resource_type)
            if key.name in NEVER_NULL_SORTS:
                # No NULLS LAST on a column that holds none: it would keep PostgreSQL from reading
                # the (hospital, type, last_updated) index in order, so a newest-first page of a
                # million resources would sort them all.
                order.append(expression.desc() if key.descending else expression.asc())
            else:
                order.append(
                    expression.desc().nulls_last() if key.descending else expression.asc().nulls_last()
                )
        order.append(r.id)
        return (
            select(r.id, r.version_id, r.last_updated, r.content)
            .where(*self.matches(query, snapshot))
            .order_by(*order)
            .limit(query.count)
            .offset(offset)
        )

    def count(self, query: SearchQuery, snapshot: int | None) -> Select:
        r = tables.resources.c
        return (
            select(func.count())
            .select_from(tables.resources)
            .where(*self.matches(query, snapshot))
            .where(r.id.isnot(None))
        )
