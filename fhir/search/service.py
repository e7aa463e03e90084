"""Running a search: matches, totals, includes, paging links, the searchset Bundle."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode

import orjson
from sqlalchemy import false, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.time_limits import was_cancelled
from app.timeutil import as_utc
from fhir.bundle_builder import bundle_text, resource_entry
from fhir.errors import FhirError, Issue, operation_outcome
from fhir.model_classes import is_resource_type
from fhir.response_size import fitted_page, note_returned
from fhir.search.builder import Restriction, SearchBuilder
from fhir.search.cursor import decode_page_cursor, encode_cursor
from fhir.search.request import ITERATE_ROUNDS, SearchQuery, parse_search
from fhir.storage import tables
from fhir.storage.history_walk import newest_seq
from fhir.storage.repository import StoredResource
from fhir.subsetting import subset_stored

MAX_INCLUDED = 1000


@dataclass(frozen=True)
class SearchContext:
    """Who searches where: the hospital, the client (for cursors) and the access narrowing."""

    session: Session
    hospital_id: str
    client_id: str
    base_url: str
    restrict: Restriction | None = None

    def snapshot(self) -> int:
        """The hospital's newest history ``seq``: pages of one search see what existed then."""
        return self.session.execute(newest_seq(self.hospital_id)).scalar() or 0

    @staticmethod
    def stored(resource_type: str, row) -> StoredResource:
        return StoredResource(
            resource_type, row.id, row.version_id, as_utc(row.last_updated), False, row.content
        )


def _included(
    ctx: SearchContext, builder: SearchBuilder, query: SearchQuery, ids: list[str]
) -> list[StoredResource]:
    """The resources ``_include`` and ``_revinclude`` bring along: those of the matches, then,
    for ``:iterate`` ones, those of what the previous round brought, for ``ITERATE_ROUNDS``
    rounds or until a round brings nothing new (at most ``MAX_INCLUDED`` in all)."""
    found: dict[tuple[str, str], StoredResource] = {}
    frontier: dict[str, list[str]] = {query.resource_type: list(ids)} if ids else {}
    for round_ in range(1 + ITERATE_ROUNDS):
        before = len(found)
        for include in query.includes:
            sources = frontier.get(include.source_type)
            if sources and (include.iterate or round_ == 0):
                _include_targets(ctx, builder, found, include, sources)
        for include in query.revincludes:
            if not (include.iterate or round_ == 0):
                continue
            for target_type, target_ids in frontier.items():
                if target_type in include.param.targets or "Resource" in include.param.targets:
                    _revinclude_sources(ctx, builder, found, include, target_type, target_ids)
        added = list(found)[before:]
        if not added or len(found) >= MAX_INCLUDED:
            break
        frontier = defaultdict(list)
        for resource_type, resource_id in added:
            frontier[resource_type].append(resource_id)
    return list(found.values())[:MAX_INCLUDED]


def _include_targets(ctx, builder: SearchBuilder, found: dict, include, sources: list[str]) -> None:
    ref = tables.idx_reference.c
    if include.param is None:  # *: every reference of the type
        owned = [ref.hospital_id == ctx.hospital_id, ref.resource_type == include.source_type]
    else:
        owned = builder.owned(tables.idx_reference, include.source_type, include.param.code)
    targets = select(ref.target_type, ref.target_id).where(
        *owned, ref.resource_id.in_(sources), ref.target_id.isnot(None)
    )
    if include.target_type:
        targets = targets.where(ref.target_type == include.target_type)
    by_type: dict[str, set[str]] = defaultdict(set)
    for target_type, target_id in ctx.session.execute(targets.distinct().limit(MAX_INCLUDED)):
        if is_resource_type(target_type):
            by_type[target_type].add(target_id)
    r = tables.resources.c
    for target_type, target_ids in sorted(by_type.items()):
        _fetch_into(ctx, builder, found, target_type, r.id.in_(sorted(target_ids)))


def _revinclude_sources(ctx, builder, found: dict, include, target_type: str, target_ids: list[str]) -> None:
    ref = tables.idx_reference.c
    sources = select(ref.resource_id).where(
        *builder.owned(tables.idx_reference, include.source_type, include.param.code),
        ref.target_type == target_type,
        ref.target_id.in_(target_ids),
    )
    _fetch_into(ctx, builder, found, include.source_type, tables.resources.c.id.in_(sources))


def _fetch_into(ctx, builder: SearchBuilder, found: dict, resource_type: str, condition) -> None:
    r = tables.resources.c
    rows = ctx.session.execute(
        select(r.id, r.version_id, r.last_updated, r.content)
        .where(
            r.hospital_id == ctx.hospital_id,
            r.resource_type == resource_type,
            r.deleted == false(),
            condition,
            *builder.restriction(resource_type, r.id),
        )
        .limit(MAX_INCLUDED)
    )
    for row in rows:
        found.setdefault((resource_type, row.id), ctx.stored(resource_type, row))


def search(
    ctx: SearchContext,
    resource_type: str,
    args: list[tuple[str, str]],
    *,
    lenient: bool,
    compartment: str | None = None,
) -> str:
    """FHIR R4B search.html: the searchset Bundle for ``args`` (or the page a cursor names);
    ``compartment``: a Patient id, for ``Patient/{id}/{type}`` (search.html#compartments)."""
    cursor = [value for key, value in args if key == "_cursor"]
    if cursor:
        state = decode_page_cursor(
            cursor[-1], hospital_id=ctx.hospital_id, client_id=ctx.client_id, page_of=resource_type
        )
        args, offset, snapshot = [tuple(pair) for pair in state["q"]], int(state["o"]), int(state["s"])
        compartment = state.get("k")
    else:
        offset, snapshot = 0, None
    query = replace(parse_search(resource_type, args, lenient=lenient), compartment=compartment)
    builder = SearchBuilder(ctx.hospital_id, ctx.base_url, ctx.restrict)
    if snapshot is None:
        snapshot = ctx.snapshot()
    try:
        total = None
        rows = []
        if not query.summary_count and query.count > 0:
            rows = list(ctx.session.execute(builder.page(query, offset=offset, snapshot=snapshot)))
        if query.summary_count or (
            query.total == "accurate" and not (offset == 0 and len(rows) < query.count)
        ):
            total = ctx.session.execute(builder.count(query, snapshot)).scalar_one()
        elif offset == 0 and len(rows) < query.count:
            total = len(rows)
        matches, included = fitted_page(
            [ctx.stored(resource_type, row) for row in rows], lambda ids: _included(ctx, builder, query, ids)
        )
    except OperationalError as error:
        # Every statement is bounded (app/time_limits.py); a batch entry's savepoint survives this.
        if was_cancelled(error):
            raise FhirError.simple(400, "too-costly", "The search took too long; narrow it down.") from None
        raise

    if query.summary or query.elements:
        matches = [subset_stored(m, query.summary, query.elements) for m in matches]
    base = ctx.base_url
    note_returned((*matches, *included))
    entries = [resource_entry(base, m, "match") for m in matches]
    entries += [resource_entry(base, i, "include") for i in included]
    if query.ignored:
        outcome = operation_outcome(
            [Issue("not-supported", note, severity="warning") for note in query.ignored]
        )
        entries.append('{"resource":' + orjson.dumps(outcome).decode() + ',"search":{"mode":"outcome"}}')

    page = Page(ctx.hospital_id, ctx.client_id, base, query, offset, snapshot, bool(cursor))
    return bundle_text("searchset", entries, total=total, links=page.links(len(rows), len(matches), total))


@dataclass(frozen=True)
class Page:
    """Where a page of a search lies: its links (self, next, previous) carry signed cursors
    bound to the hospital and the client, with the snapshot the paging sees."""

    hospital_id: str
    client_id: str
    base: str
    query: SearchQuery
    offset: int
    snapshot: int
    by_cursor: bool

    def url(self, page_offset: int) -> str:
        query = self.query
        state = {"h": self.hospital_id, "c": self.client_id, "t": query.resource_type, "q": query.applied}
        if query.compartment is not None:
            state["k"] = query.compartment
        state.update(o=page_offset, s=self.snapshot)
        return f"{self.base}/{query.resource_type}?{urlencode({'_cursor': encode_cursor(state)})}"

    def links(self, rows: int, matches: int, total: int | None) -> list[dict]:
        """``rows`` the page query returned, ``matches`` of them on the page."""
        query, offset = self.query, self.offset
        self_url = (
            self.url(offset)
            if self.by_cursor
            else _self_url(self.base, query.resource_type, query.applied, query.compartment)
        )
        links = [{"relation": "self", "url": self_url}]
        # A page the byte budget ended early goes on where it stopped (search.html#count).
        if matches < rows or (
            query.count and rows == query.count and (total is None or offset + query.count < total)
        ):
            links.append({"relation": "next", "url": self.url(offset + matches)})
        if offset > 0 and query.count:
            links.append({"relation": "previous", "url": self.url(max(0, offset - query.count))})
        return links


def _self_url(base: str, resource_type: str, args, compartment: str | None = None) -> str:
    query = urlencode(args)
    path = f"Patient/{compartment}/{resource_type}" if compartment is not None else resource_type
    return f"{base}/{path}" + (f"?{query}" if query else "")


def find_ids(ctx: SearchContext, resource_type: str, criteria: str, limit: int) -> list[str]:
    """The ids matching conditional criteria (http.html#ccreate): strict, no paging."""
    args = parse_qsl(criteria, keep_blank_values=True)
    if not args or any(key.startswith("_") and key not in ("_id", "_lastUpdated") for key, _ in args):
        raise FhirError.invalid(f"Conditional criteria must be search parameters, got {criteria[:100]!r}.")
    query = parse_search(resource_type, [*args, ("_count", str(limit))], lenient=False)
    builder = SearchBuilder(ctx.hospital_id, ctx.base_url, ctx.restrict)
    rows = ctx.session.execute(builder.page(query, offset=0, snapshot=None))
    return [row.id for row in rows]
