"""System search: ``GET [base]?_type=Observation,Condition&params`` (FHIR R4B search.html#level).

The parameters must be ones every listed type has (search.html#_type); without ``_type`` only
the common ones (``_id``, ``_lastUpdated``, ``_tag``...) apply, across every type the searcher
may search. Each type's part of the query is that type's own search, with its own access
restriction; the parts are ORed, ordered by type and id, and paged like a type search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlencode

import orjson
from sqlalchemy import and_, func, or_, select

from fhir.bundle_builder import bundle_text, resource_entry
from fhir.errors import FhirError, Issue, operation_outcome
from fhir.response_size import fitted_page, note_returned
from fhir.search.builder import Restriction, SearchBuilder
from fhir.search.cursor import decode_page_cursor, encode_cursor
from fhir.search.request import MAX_SEARCH_COST, SearchQuery, parse_search, search_cost
from fhir.search.service import SearchContext
from fhir.storage import tables
from fhir.subsetting import subset_stored

SYSTEM = "*"  # the cursor's "t" for a system search
NOT_AT_SYSTEM_LEVEL = ("_include", "_revinclude", "_elements")
SYSTEM_COST_FACTOR = 2


def requested_types(args: list[tuple[str, str]]) -> list[str] | None:
    """The types ``_type`` names (repeated or comma-separated), or None without ``_type``."""
    named = [t.strip() for key, raw in args if key == "_type" for t in raw.split(",")]
    return list(dict.fromkeys(named)) if any(key == "_type" for key, _ in args) else None


def _queries(types: list[str], args: list[tuple[str, str]], lenient: bool) -> dict[str, SearchQuery]:
    for key, _ in args:
        if key.partition(":")[0] in NOT_AT_SYSTEM_LEVEL:
            raise FhirError.invalid(f"{key[:40]} is not supported in a system search: search one type.")
    queries = {t: parse_search(t, args, lenient=lenient) for t in types}
    applied = [set(query.applied) for query in queries.values()]
    if lenient and any(pairs != applied[0] for pairs in applied):
        # A parameter some listed type lacks is left out for all of them, never applied to some.
        common = set.intersection(*applied)
        ignored = tuple(dict.fromkeys(note for query in queries.values() for note in query.ignored))
        kept = [pair for pair in args if pair in common]
        queries = {t: replace(parse_search(t, kept, lenient=True), ignored=ignored) for t in types}
    for query in queries.values():
        if any(key.param is not None for key in query.sort):
            raise FhirError.invalid("A system search sorts by _id or _lastUpdated only.")
    _check_cost(queries)
    return queries


def _check_cost(queries: dict[str, SearchQuery]) -> None:
    """Each type's criteria are a search of their own, so they cost once per type; ``_id`` and
    ``_lastUpdated`` (the resource table's own columns) once in all. A system search may cost
    ``SYSTEM_COST_FACTOR`` type searches: ``_tag`` over every type, not ``:not`` over every type."""
    cost = 0
    for number, query in enumerate(queries.values()):
        typed = [c for c in query.criteria if c.param is not None or c.hops]
        special = [c for c in query.criteria if c.param is None and not c.hops]
        cost += search_cost(typed if number else [*typed, *special], (), (), ())
    budget = MAX_SEARCH_COST * SYSTEM_COST_FACTOR
    if cost > budget:
        raise FhirError.simple(
            400,
            "too-costly",
            f"This system search would cost {cost} units over {len(queries)} types, more than the"
            f" {budget} one may: name fewer types with _type, or narrow the parameters.",
        )


def search_system(
    ctx: SearchContext,
    types: list[str],
    args: list[tuple[str, str]],
    *,
    lenient: bool,
    restrict_for: Callable[[list[str]], Restriction] | None = None,
) -> str:
    """The searchset Bundle of a system search over ``types`` (each one the searcher may search;
    a cursor's page: the cursor's types). ``restrict_for(types)`` gives the access restriction
    (the searched types by their search scopes), else the context's."""
    cursor = [value for key, value in args if key == "_cursor"]
    if cursor:
        state = decode_page_cursor(
            cursor[-1], hospital_id=ctx.hospital_id, client_id=ctx.client_id, page_of=SYSTEM
        )
        types, args = list(state["y"]), [tuple(pair) for pair in state["q"]]
        offset, snapshot = int(state["o"]), int(state["s"])
    else:
        offset, snapshot = 0, ctx.snapshot()
    if not types:
        raise FhirError.invalid("This search names no resource type this token may search.")
    named = any(key == "_type" for key, _ in args)
    args = [(key, raw) for key, raw in args if key != "_type"]
    queries = _queries(types, args, lenient)
    first = next(iter(queries.values()))
    restrict = restrict_for(types) if restrict_for is not None else ctx.restrict
    builder = SearchBuilder(ctx.hospital_id, ctx.base_url, restrict)
    matches = or_(*(and_(*builder.matches(query, snapshot)) for query in queries.values()))
    r = tables.resources.c
    rows, total = [], None
    if not first.summary_count and first.count > 0:
        order = [
            (r.last_updated.desc() if k.descending else r.last_updated.asc())
            if k.name == "_lastUpdated"
            else (r.id.desc() if k.descending else r.id.asc())
            for k in first.sort
        ]
        page = (
            select(r.resource_type, r.id, r.version_id, r.last_updated, r.content)
            .where(matches)
            .order_by(*order, r.resource_type, r.id)
            .limit(first.count)
            .offset(offset)
        )
        rows = list(ctx.session.execute(page))
    if first.summary_count or (first.total == "accurate" and not (offset == 0 and len(rows) < first.count)):
        total = ctx.session.execute(
            select(func.count()).select_from(tables.resources).where(matches)
        ).scalar_one()
    elif offset == 0 and len(rows) < first.count:
        total = len(rows)
    found, _ = fitted_page([ctx.stored(row.resource_type, row) for row in rows], lambda ids: [])
    if first.summary:
        found = [subset_stored(m, first.summary, ()) for m in found]
    note_returned(found)
    base = ctx.base_url
    applied = [("_type", ",".join(types)), *first.applied] if named else list(first.applied)

    def page_url(page_offset: int) -> str:
        state = {"h": ctx.hospital_id, "c": ctx.client_id, "t": SYSTEM, "y": types, "q": first.applied}
        state.update(o=page_offset, s=snapshot)
        return f"{base}?{urlencode({'_cursor': encode_cursor(state)})}"

    links = [{"relation": "self", "url": page_url(offset) if cursor else f"{base}?{urlencode(applied)}"}]
    if len(found) < len(rows) or (
        first.count and len(rows) == first.count and (total is None or offset + first.count < total)
    ):
        links.append({"relation": "next", "url": page_url(offset + len(found))})
    if offset > 0 and first.count:
        links.append({"relation": "previous", "url": page_url(max(0, offset - first.count))})
    entries = [resource_entry(base, m, "match") for m in found]
    if first.ignored:
        outcome = operation_outcome(
            [Issue("not-supported", note, severity="warning") for note in first.ignored]
        )
        entries.append('{"resource":' + orjson.dumps(outcome).decode() + ',"search":{"mode":"outcome"}}')
    return bundle_text("searchset", entries, total=total, links=links)
