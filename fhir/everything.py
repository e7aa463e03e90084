"""``Patient/{id}/$everything`` (FHIR R4B patient-operation-everything), paged.

The Patient and every resource of its compartment (matches), and on each page the resources
those members point to outside the compartment — the Practitioner, Organization, Location or
Medication of an Encounter or a prescription — as includes. The caller's restriction binds
both: a patient token sees its own compartment and the types ``fhir.policy`` shares with
patients, a v2 scope only what its restriction matches.

Parameters (any other is refused, or left out under ``Prefer: handling=lenient``):
``_since`` (members changed at or after an instant), ``_type`` (only these types, members and
includes alike), ``start`` and ``end`` (members whose clinical date — their type's ``date``
search parameter — lies in the care period; members without one are always in), ``_count``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from urllib.parse import urlencode

from sqlalchemy import and_, exists, false, or_, select, tuple_

from fhir.bundle_builder import bundle_text, resource_entry
from fhir.errors import FhirError
from fhir.interactions import WHOLE_NUMBER
from fhir.model_classes import is_resource_type
from fhir.response_size import fitting, note_returned
from fhir.search.builder import SearchBuilder, restrict_mixed_types
from fhir.search.cursor import STALE_CURSOR, decode_page_cursor, encode_cursor
from fhir.search.index_values import date_range
from fhir.search.registry import indexed_params, patient_compartment_params, resource_types, stored_under
from fhir.storage import tables

DEFAULT_COUNT = 100
MAX_COUNT = 1000
MAX_REFERENCED = 1000  # resources outside the compartment one page may bring along
_PARAMETERS = ("_count", "_since", "_type", "start", "end")
_TRANSPORT = frozenset({"_format", "_pretty", "_cursor"})


@dataclass
class EverythingQuery:
    count: int = DEFAULT_COUNT
    since: datetime | None = None
    types: tuple[str, ...] | None = None
    start: datetime | None = None  # the care period: from the start of ``start``...
    end: datetime | None = None  # ... to the end of ``end``
    applied: list[tuple[str, str]] = field(default_factory=list)


def _moment(name: str, raw: str) -> tuple[datetime, datetime]:
    bounds = date_range(raw.strip())
    if bounds is None:
        raise FhirError.invalid(f"$everything's {name} takes a FHIR date or dateTime, got {raw[:60]!r}.")
    return bounds


def parse_everything(pairs, *, lenient: bool) -> EverythingQuery:
    query = EverythingQuery()
    for name, raw in pairs:
        if name in _TRANSPORT:
            continue
        if name not in _PARAMETERS:
            if lenient:
                continue
            raise FhirError.invalid(f"$everything takes {', '.join(_PARAMETERS)}; not {name[:60]!r}.")
        if name == "_count":
            if not WHOLE_NUMBER.fullmatch(raw):
                raise FhirError.invalid("_count must be a whole number.")
            query.count = max(1, min(int(raw), MAX_COUNT))
        elif name == "_since":
            query.since = _moment(name, raw)[0]
        elif name == "start":
            query.start = _moment(name, raw)[0]
        elif name == "end":
            query.end = _moment(name, raw)[1]
        else:
            types = [t.strip() for t in raw.split(",") if t.strip()]
            unknown = [t for t in types if not is_resource_type(t)]
            if unknown or not types:
                raise FhirError.invalid(f"_type names no resource type: {(unknown or [raw])[0][:64]!r}.")
            query.types = tuple(dict.fromkeys((*(query.types or ()), *types)))
        query.applied.append((name, raw))
    return query


@cache
def outside_types() -> frozenset[str]:
    """Types no resource of a patient's compartment is (a Practitioner, a Medication...)."""
    return frozenset(t for t in resource_types() if t != "Patient" and not patient_compartment_params(t))


@cache
def _dated_types() -> dict[str, tuple[str, ...]]:
    """Compartment types with a ``date`` search parameter: where their clinical date is indexed."""
    return {
        t: stored_under(t, "date").codes
        for t in resource_types()
        if patient_compartment_params(t) and indexed_params(t).get("date") is not None
    }


def _in_care_period(hospital_id: str, query: EverythingQuery, r):
    """Members without a clinical date, or with one that overlaps [start, end)."""
    d = tables.idx_date.c
    overlapping = [d.high > query.start] if query.start else []
    overlapping += [d.low < query.end] if query.end else []
    clauses = []
    for resource_type, codes in _dated_types().items():
        rows = [
            d.resource_id == r.id,
            d.resource_type == resource_type,
            d.hospital_id == hospital_id,
            d.param.in_(codes),
        ]
        dated = exists(select(d.resource_id).where(*rows))
        in_period = exists(select(d.resource_id).where(*rows, *overlapping))
        clauses.append(and_(r.resource_type == resource_type, or_(~dated, in_period)))
    return or_(r.resource_type.notin_(list(_dated_types())), *clauses)


def everything(ctx, patient_id: str, args, *, lenient: bool) -> str:
    """The page of $everything ``args`` (or their cursor) ask for, as searchset JSON text."""
    level = f"Patient/{patient_id}/$everything"
    url = f"{ctx.base_url}/{level}"
    cursor = [value for key, value in args if key == "_cursor"]
    if cursor:
        state = decode_page_cursor(
            cursor[-1], hospital_id=ctx.hospital_id, client_id=ctx.client_id, page_of=level
        )
        try:
            query = parse_everything(state["q"], lenient=False)
            offset, snapshot = int(state["o"]), int(state["s"])
        except (KeyError, TypeError, ValueError):  # a cursor of an earlier release
            raise FhirError.invalid(STALE_CURSOR) from None
        self_url = f"{url}?{urlencode({'_cursor': cursor[-1]})}"
    else:
        query, offset, snapshot = parse_everything(args, lenient=lenient), 0, ctx.snapshot()
        self_url = url + (f"?{urlencode(query.applied)}" if query.applied else "")
    r = tables.resources.c
    builder = SearchBuilder(ctx.hospital_id, ctx.base_url, ctx.restrict)
    patient = ctx.session.execute(
        select(r.id).where(
            r.hospital_id == ctx.hospital_id,
            r.resource_type == "Patient",
            r.id == patient_id,
            r.deleted == false(),
            *builder.restriction("Patient", r.id),
        )
    ).first()
    if patient is None:
        raise FhirError.not_found("No such Patient.")

    comp = tables.compartments.c
    conditions = [
        comp.hospital_id == ctx.hospital_id,
        comp.patient_id == patient_id,
        r.deleted == false(),
        r.created_seq <= snapshot,
    ]
    if ctx.restrict:
        conditions.append(restrict_mixed_types(ctx.restrict, r.resource_type, r.id, resource_types()))
    if query.since:
        conditions.append(r.last_updated >= query.since)
    if query.start or query.end:
        conditions.append(_in_care_period(ctx.hospital_id, query, r))
    in_compartment = (
        (comp.hospital_id == r.hospital_id)
        & (comp.resource_type == r.resource_type)
        & (comp.resource_id == r.id)
    )
    of_types = [r.resource_type.in_(query.types)] if query.types else []
    members = (
        select(r.resource_type, r.id, r.version_id, r.last_updated, r.content)
        .join(tables.compartments, in_compartment)
        .where(*conditions, *of_types)
        .order_by(r.resource_type, r.id)
        .limit(query.count)
        .offset(offset)
    )
    rows = list(ctx.session.execute(members))
    found = [ctx.stored(row.resource_type, row) for row in rows]
    shown = found[: fitting(found)]
    if query.types is None:  # what the page's members point to, page by page
        owners = sorted({(m.resource_type, m.id) for m in shown})
    elif offset == 0:
        # _type may leave out the members that point (``_type=Practitioner`` keeps none): what
        # the whole record points to, once, on the first page (the compartment's rows alone: the
        # members' own narrowing, a patient token's across every type, made this slow, and what
        # is brought is narrowed by the caller's restriction of its own type anyway)
        owners = select(comp.resource_type, comp.resource_id).where(
            comp.hospital_id == ctx.hospital_id, comp.patient_id == patient_id
        )
    else:
        owners = []
    referenced = _referenced(ctx, builder, owners, query.types)
    note_returned((*shown, *referenced))
    entries = [resource_entry(ctx.base_url, member, "match") for member in shown]
    entries += [resource_entry(ctx.base_url, other, "include") for other in referenced]

    state = {"h": ctx.hospital_id, "c": ctx.client_id, "t": level, "q": query.applied, "s": snapshot}
    links = [{"relation": "self", "url": self_url}]
    if len(rows) == query.count or len(shown) < len(rows):
        following = encode_cursor({**state, "o": offset + len(shown)})
        links.append({"relation": "next", "url": f"{url}?{urlencode({'_cursor': following})}"})
    if offset:
        previous = encode_cursor({**state, "o": max(0, offset - query.count)})
        links.append({"relation": "previous", "url": f"{url}?{urlencode({'_cursor': previous})}"})
    return bundle_text("searchset", entries, links=links)


def _referenced(ctx, builder: SearchBuilder, owners, types: tuple[str, ...] | None) -> list:
    """The resources outside the compartment that ``owners`` point to: (type, id) pairs, or a
    query selecting them."""
    if isinstance(owners, list) and not owners:
        return []
    wanted = outside_types() if types is None else outside_types() & set(types)
    if not wanted:
        return []
    ref = tables.idx_reference.c
    targets = (
        select(ref.target_type, ref.target_id)
        .where(
            ref.hospital_id == ctx.hospital_id,
            tuple_(ref.resource_type, ref.resource_id).in_(owners),
            ref.target_type.in_(sorted(wanted)),
            ref.target_id.isnot(None),
        )
        .distinct()
        .limit(MAX_REFERENCED)
    )
    by_type: dict[str, set[str]] = {}
    for target_type, target_id in ctx.session.execute(targets):
        by_type.setdefault(target_type, set()).add(target_id)
    r = tables.resources.c
    found = []
    for target_type, ids in sorted(by_type.items()):
        rows = ctx.session.execute(
            select(r.id, r.version_id, r.last_updated, r.content)
            .where(
                r.hospital_id == ctx.hospital_id,
                r.resource_type == target_type,
                r.id.in_(sorted(ids)),
                r.deleted == false(),
                *builder.restriction(target_type, r.id),
            )
            .order_by(r.id)
        )
        found += [ctx.stored(target_type, row) for row in rows]
    return found
