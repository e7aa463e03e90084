"""The common FHIR search, answered beneath Flask in one statement.

``Observation?subject=Patient/X``, ``Observation?patient=X&code=S|C&date=geD``,
``Condition?patient=X``, ``Patient?name=N``: a client's everyday searches are a few criteria of
plain values. Through the view such a search took about 10 ms (Flask, SQLAlchemy building and
compiling three statements — the snapshot, the page, the count — and psycopg running them);
here it is one prepared statement over the worker's libpq connection (``app.direct_reads``)
that returns the page, the total and the paging snapshot together.

The request is read by the view's own parser (``parse_search``): its criteria, count, sort and
the ``applied`` pairs the links carry. This path answers only what it can answer exactly as the
view would, with the same Bundle (``bundle_text``; the entries ``resource_entry`` makes, spliced
by PostgreSQL; the view's ``Page`` links and cursors): criteria of one value each, of reference
(an id or ``Type/id``), token (``code``, ``system|code``, ``|code``), date (any prefix but
``ap``) or string (no modifier) parameters, or ``_id``; ``_count``, ``_total`` and ``_sort`` by
one date parameter or ``_lastUpdated``; a caller whose scopes allow searching the type with no
search restriction (a patient's token within its compartment, as the view narrows it). Its
conditions are the view's, one for one (``SearchBuilder``), in a fixed order that one generic
plan serves (``_Statement``): a test compares the two paths' answers on drawn searches.

The caller is judged as the read fast path judges it (``verified_claims``, then ``principal_for``
with the revocation epoch read by the same statement); the search is charged to the client's
and hospital's shares with its time, as the view charges it; its AuditEvent lists what it
returned. Only quick searches are answered here: the statement's time limit is
``FHIRGATE_QUICK_SEARCH_MS`` (50 ms), so that it may run beside reads in the worker's light
lane; one that takes longer is cancelled and goes to the view, which runs it in the heavy slot
(``app.lanes``). Everything else — a cursor, an include, a chain, a modifier, a clinician's
token, every error — goes to the view, untouched.
"""

from __future__ import annotations

import hashlib
import re
import time
from urllib.parse import parse_qsl, urlencode

from app.fast_path import FastPath
from app.integrations.gateway import connected_at
from fhir import response_size
from fhir.audit import audit_writer, fast_path_facts
from fhir.bundle_builder import bundle_text, json_text
from fhir.errors import FhirError
from fhir.fair_share import WEIGHTS, Admission
from fhir.http import NO_STORE, base_url
from fhir.model_classes import is_resource_type
from fhir.policy import SHARED_WITH_PATIENTS, AccessPolicy
from fhir.read_fast_path import plain_request
from fhir.search.builder import NEVER_NULL_SORTS
from fhir.search.index_values import normalize_string
from fhir.search.query_values import parse_date_value, parse_reference_value, parse_token_value
from fhir.search.registry import patient_compartment_params, stored_under
from fhir.search.request import Criterion, SearchQuery, parse_search
from fhir.search.service import Page
from fhir.storage.history_walk import NEWEST_SEQ_SQL
from fhir.validation import ID_CHARACTERS
from fhir.version import FHIR_JSON
from oauth import EPOCH_QUERY, InvalidTokenError, adopt_request_epoch, principal_for, verified_claims

_SEARCH_PATH = re.compile(r"/fhir/([A-Za-z0-9\-.]{1,40})/([A-Z][A-Za-z]{1,63})")
_CONTENT_TYPE = ("Content-Type", f"{FHIR_JSON}; charset=utf-8")
_TRANSPORT = frozenset({"_format", "_pretty"})
_CONTROLS = frozenset({"_count", "_total", "_sort"})
# Distinct statements a worker prepares (one per shape of search): beyond, the view answers.
MAX_SHAPES = 500
SEARCH = "search-type"
# The characters of the page's ids, space-separated, that PostgreSQL may splice unescaped.
_SPLICED_IDS = ID_CHARACTERS | {" "}
# A match's Bundle entry (``resource_entry``) around its fullUrl's id and its resource.
_ENTRY_MIDDLE, _ENTRY_TAIL = '","resource":', ',"search":' + json_text({"mode": "match"}) + "}"


def _query_string(environ) -> str:
    """The query string as Flask reads it: WSGI hands over its bytes as latin-1 text, and a
    client may send UTF-8 unescaped (``name=MÜL``)."""
    return environ["QUERY_STRING"].encode("latin-1").decode("utf-8")


class Unsupported(Exception):
    """This search is the view's to answer."""


COMPARTMENT_RANK = 0.5  # after a reference criterion, before a token


class _Statement:
    """The SQL of one search and its parameters, numbered as they are added.

    Its criteria become index look-ups on the alias ``x``; the most selective kind (a reference,
    then a patient token's compartment, a token, a string, a date) drives the search as a
    ``MATERIALIZED`` CTE, and the others
    are checked for each resource it found through their owner indexes. The order is fixed by
    the statement itself, so one generic plan serves every value (planning a search for its
    values cost more than running it)."""

    def __init__(self, hospital_id: str, resource_type: str) -> None:
        self.params: list[str] = [hospital_id, resource_type]
        self.ids: list[str] = []  # _id values, each a parameter
        self.lookups: list[tuple[float, str, str]] = []  # (rank, index table, condition on x)

    def param(self, value: str, cast: str = "") -> str:
        self.params.append(value)
        return f"${len(self.params)}{cast}"

    def rows_of(
        self, rank: float, table: str, codes: tuple[str, ...], target_type: str | None, value_sql: str
    ) -> None:
        """The index rows of the parameter (``SearchBuilder.owned``) matching the value."""
        code = f"x.param = {self.param(codes[0])}" if len(codes) == 1 else (
            "x.param IN (" + ", ".join(self.param(c) for c in codes) + ")"
        )  # fmt: skip
        owned = f"x.hospital_id = $1 AND x.resource_type = $2 AND {code}"
        if target_type:
            owned += f" AND x.target_type = {self.param(target_type)}"
        self.lookups.append((rank, table, f"{owned} AND {value_sql}"))

    def compartment(self, resource_type: str, patient_id: str) -> None:
        """What a patient's token sees of the type: its own Patient, a type shared with patients
        whole, a type of the patient compartment only in its own compartment."""
        if resource_type == "Patient":
            self.ids.append(self.param(patient_id))
        elif resource_type not in SHARED_WITH_PATIENTS:
            if not patient_compartment_params(resource_type):
                raise Unsupported  # nothing to see: the view says so
            # The compartment's members drive unless a reference (a patient's) is narrower.
            members = (
                f"x.hospital_id = $1 AND x.resource_type = $2 AND x.patient_id = {self.param(patient_id)}"
            )
            self.lookups.append((COMPARTMENT_RANK, "fhir_compartments", members))

    def matched(self, *, last_updated: bool) -> str:
        """The ids of the matching resources (``SearchBuilder.matches``), with their
        ``last_updated`` when the order needs it. Built from constants and numbered parameters
        only: no value of the request is in the text."""
        lookups = sorted(self.lookups, key=lambda lookup: lookup[0])
        if not self.ids and lookups and not last_updated:
            # Index rows exist for current, undeleted versions only (a new version or a delete
            # clears its resource's rows first; ``fhirgate reindex`` indexes undeleted ones), so the
            # index rows alone decide and only the page's resources are read. Visiting every
            # match's row for its ``deleted`` flag was most of a search's buffer reads (~4 a match).
            _, table, condition = lookups.pop(0)
            found = f"SELECT DISTINCT x.resource_id AS id FROM {table} AS x WHERE {condition}"  # noqa: S608
            probes = [f"EXISTS ({_probe(table, condition, 'd.id')})" for _, table, condition in lookups]
            matched = f"SELECT d.id FROM driver AS d WHERE {' AND '.join(probes) or 'TRUE'}"  # noqa: S608
            return f"driver AS MATERIALIZED ({found}), matched AS MATERIALIZED ({matched})"
        resources = "fhir_resources AS r"
        where = ["r.hospital_id = $1", "r.resource_type = $2", "NOT r.deleted"]
        where += [f"r.id = {ref}" for ref in self.ids]
        driver = ""
        if not self.ids and lookups:
            _, table, condition = lookups.pop(0)
            found = f"SELECT DISTINCT x.resource_id AS id FROM {table} AS x WHERE {condition}"  # noqa: S608
            driver = f"driver AS MATERIALIZED ({found}), "
            resources = "driver AS d JOIN fhir_resources AS r ON r.hospital_id = $1"
            resources += " AND r.resource_type = $2 AND r.id = d.id"
        where += [f"EXISTS ({_probe(table, condition, 'r.id')})" for _, table, condition in lookups]
        matched = f"SELECT r.id, r.last_updated FROM {resources} WHERE {' AND '.join(where)}"  # noqa: S608
        return f"{driver}matched AS MATERIALIZED ({matched})"


def _probe(table: str, condition: str, resource_id: str) -> str:
    """The index rows of one candidate that meet a criterion: one exact look-up (the lookup
    indexes end with the resource id). OFFSET 0 keeps it a probe: PostgreSQL does not turn such
    an EXISTS into a join, which a generic plan (blind to how common a code is) ran as a hash
    join over every index row of the code: 6,708 rows for one patient's 23 Observations."""
    return f"SELECT 1 FROM {table} AS x WHERE x.resource_id = {resource_id} AND {condition} OFFSET 0"  # noqa: S608


def _date_sql(statement: _Statement, raw: str, low: str, high: str) -> str:
    """``SearchBuilder._date_clause``, for the prefixes it answers without the clock."""
    prefix, lo, hi = parse_date_value(raw)
    if prefix == "ap":
        raise Unsupported
    start, end = (
        (lambda: statement.param(lo.isoformat(), "::timestamptz")),
        (lambda: statement.param(hi.isoformat(), "::timestamptz")),
    )
    if prefix == "eq":
        return f"{low} >= {start()} AND {high} <= {end()}"
    if prefix == "ne":
        return f"NOT ({low} >= {start()} AND {high} <= {end()})"
    return {
        "gt": lambda: f"{high} > {end()}",
        "lt": lambda: f"{low} < {start()}",
        "ge": lambda: f"{high} > {start()}",
        "le": lambda: f"{low} < {end()}",
        "sa": lambda: f"{low} >= {end()}",
        "eb": lambda: f"{high} <= {start()}",
    }[prefix]()


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _criterion(statement: _Statement, criterion: Criterion, resource_type: str, base: str) -> None:
    if criterion.hops or len(criterion.values) != 1:
        raise Unsupported
    raw = criterion.values[0]
    if criterion.name == "_id" and criterion.param is None:
        statement.ids.append(statement.param(raw[:64]))
        return
    if criterion.param is None or criterion.modifier is not None:
        raise Unsupported
    stored = stored_under(resource_type, criterion.name)
    kind = criterion.type
    if kind == "reference":
        target_type, target_id = parse_reference_value(raw, base)
        if "://" in target_id:
            raise Unsupported
        value = f"x.target_id = {statement.param(target_id[:64])}"
        if target_type:
            value += f" AND x.target_type = {statement.param(target_type)}"
        statement.rows_of(0, "fhir_idx_reference", stored.codes, stored.target_type, value)
    elif kind == "token":
        system, code, system_given = parse_token_value(raw)
        parts = [f"x.code = {statement.param(code[:256])}"] if code is not None else []
        if system_given:
            parts.append("x.system IS NULL" if not system else f"x.system = {statement.param(system[:256])}")
        statement.rows_of(
            1, "fhir_idx_token", stored.codes, stored.target_type, " AND ".join(parts) or "TRUE"
        )
    elif kind == "date":
        statement.rows_of(
            3, "fhir_idx_date", stored.codes, stored.target_type, _date_sql(statement, raw, "x.low", "x.high")
        )
    elif kind == "string":
        pattern = statement.param(_like_prefix(normalize_string(raw)))
        statement.rows_of(
            2, "fhir_idx_string", stored.codes, stored.target_type, f"x.value LIKE {pattern} ESCAPE '\\'"
        )
    else:
        raise Unsupported


def _order(statement: _Statement, query: SearchQuery) -> str:
    """``SearchBuilder.page``'s ORDER BY (its ``_sort_expression``), then the id, over the
    matches ``m`` (their ids and ``last_updated``): the page is chosen before any content is read."""
    if len(query.sort) > 1:
        raise Unsupported
    order = []
    for key in query.sort:
        if key.name == "_lastUpdated":
            expression = "m.last_updated"
        elif key.type == "date" and key.param is not None:
            stored = stored_under(query.resource_type, key.name)
            column, aggregate = ("high", "max") if key.descending else ("low", "min")
            codes = ", ".join(statement.param(code) for code in stored.codes)
            owned = f"d.hospital_id = $1 AND d.resource_type = $2 AND d.param IN ({codes})"
            if stored.target_type:
                owned += f" AND d.target_type = {statement.param(stored.target_type)}"
            picked = f"SELECT {aggregate}(d.{column}) FROM fhir_idx_date AS d"  # noqa: S608 - constants only
            expression = f"({picked} WHERE {owned} AND d.resource_id = m.id)"
        else:
            raise Unsupported
        nulls = "" if key.name in NEVER_NULL_SORTS else " NULLS LAST"
        order.append(f"{expression} {'DESC' if key.descending else 'ASC'}{nulls}")
    return ", ".join([*order, "m.id"])


def search_statement(
    query: SearchQuery, hospital_id: str, base: str, *, patient: str | None = None
) -> tuple[str, list[str]]:
    """The SQL of a supported search, and its parameters: one row of the revocation epoch, the
    total (when asked for), the hospital's newest history ``seq`` (the snapshot of paging links),
    and the page: how many of its resources have their text, their ids (space-separated), their
    Bundle entries as one JSON text (comma-separated, in order) and their resources' size in
    bytes (at least their length in characters, which the page's budget counts; ``length`` read
    every character).
    ``patient``: a patient token's, whose compartment narrows it (``ScopedRepository._compartment``).

    PostgreSQL splices the entries: the same text ``resource_entry`` makes, without a row per
    match for the worker to take apart (decoding 8 values a match and re-joining them cost
    ~100 us of the worker's interpreter time for a page of 20, a third of the search)."""
    if (
        query.includes or query.revincludes or query.summary or query.elements or query.summary_count
        or query.compartment is not None or query.ignored or not query.count > 0
    ):  # fmt: skip
        raise Unsupported
    statement = _Statement(hospital_id, query.resource_type)
    if patient is not None:
        statement.compartment(query.resource_type, patient)
    for criterion in query.criteria:
        _criterion(statement, criterion, query.resource_type, base)
    order = _order(statement, query)
    by_last_updated = any(key.name == "_lastUpdated" for key in query.sort)
    limit = statement.param(str(query.count), "::integer")
    total = "(SELECT count(*) FROM matched)" if query.total == "accurate" else "NULL::bigint"
    # Stored ids are FHIR ids (``fhir.validation.valid_id``): nothing in them needs escaping in JSON.
    # ``_run`` checks it of the page's ids all the same, before the entries go out.
    head = statement.param('{"fullUrl":' + json_text(f"{base}/{query.resource_type}/")[:-1], "::text")
    entry = f"{head} || page.id || '{_ENTRY_MIDDLE}' || page.content || '{_ENTRY_TAIL}'"
    sql = (
        f"WITH {statement.matched(last_updated=by_last_updated)},"  # noqa: S608 - constants and numbered parameters only
        f" top AS (SELECT m.id, row_number() OVER (ORDER BY {order}) AS n FROM matched AS m"
        f" ORDER BY {order} LIMIT {limit}),"
        " page AS (SELECT r.id, r.content, top.n FROM top"
        " JOIN fhir_resources AS r ON r.hospital_id = $1 AND r.resource_type = $2 AND r.id = top.id"
        " AND NOT r.deleted)"
        f" SELECT ({EPOCH_QUERY}), {total},"
        f" ({NEWEST_SEQ_SQL}),"
        " count(page.content), string_agg(page.id, ' ' ORDER BY page.n),"
        f" string_agg({entry}, ',' ORDER BY page.n), sum(octet_length(page.content))"
        " FROM (SELECT 1) AS one LEFT JOIN page ON TRUE"
    )
    return sql, statement.params


class SearchFastPath(FastPath):
    """In front of the Flask app, beside the read fast path."""

    name = "search fast path"

    def __init__(self, app, wsgi_app) -> None:
        super().__init__(app, wsgi_app)
        self.shapes: set[str] = set()

    def takes(self, environ) -> bool:
        return (
            environ.get("REQUEST_METHOD") == "GET"
            and environ.get("PATH_INFO", "").startswith("/fhir/")
            and self.app.config["FHIRGATE_SEARCH_FAST_PATH"]
        )

    def answer(self, environ):
        matched = _SEARCH_PATH.fullmatch(environ["PATH_INFO"])
        if matched is None or not plain_request(environ):
            return None
        hospital_id, resource_type = matched.groups()
        app = self.app
        reads = app.extensions["fhirgate_direct_searches"]
        if hospital_id not in app.extensions.get("fhirgate_known_hospitals", ()) or not reads.ready():
            return None
        if not is_resource_type(resource_type):
            return None
        try:
            args = parse_qsl(_query_string(environ), keep_blank_values=True, strict_parsing=True)
        except ValueError:  # (UnicodeDecodeError too)
            return None
        if any(key.startswith("_") and key not in _CONTROLS and key not in ("_id",) for key, _ in args):
            return None  # _include, _summary, _elements, _cursor, _format …: the view's
        with app.app_context():
            try:
                claims = verified_claims(environ.get("HTTP_AUTHORIZATION"), hospital_id)
            except InvalidTokenError:
                return None
            patient = claims.get("patient")
            if patient is not None and not isinstance(patient, str):
                return None
            if not args and patient is None:
                return None  # every resource of the type, counted: a heavy search, the view's
            base = base_url(hospital_id)
            try:
                query = parse_search(
                    resource_type, [(k, v) for k, v in args if k not in _TRANSPORT], lenient=False
                )
                sql, params = search_statement(query, hospital_id, base, patient=patient)
            except (Unsupported, FhirError):
                return None
            return self._run(environ, hospital_id, claims, query, sql, params, base, args)

    def _run(
        self, environ, hospital_id: str, claims: dict, query: SearchQuery, sql: str, params, base: str, args
    ):
        app = self.app
        name = "fhirgate_search_" + hashlib.sha1(sql.encode()).hexdigest()[:20]  # noqa: S324 - a name
        if name not in self.shapes:
            if len(self.shapes) >= MAX_SHAPES:
                return None
            self.shapes.add(name)
        started = time.perf_counter()
        rows = app.extensions["fhirgate_direct_searches"].run(name, sql, params)
        if not rows:
            return None
        epoch, total, snapshot, found, ids, entries, size = rows[0]
        adopt_request_epoch(int(epoch or 0))
        if connected_at(app, hospital_id, int(epoch or 0)):
            return None  # its upstream EHR answers (the view forwards it)
        try:
            principal = principal_for(
                claims, hospital_id,
                api_key=environ.get("HTTP_X_API_KEY"), api_secret=environ.get("HTTP_X_API_SECRET"),
            )  # fmt: skip
            policy = AccessPolicy(principal)
            if (
                policy.patient_id != claims.get("patient")
                or policy.require("search", query.resource_type) is not None
            ):
                return None  # not the compartment the statement assumed, or v2 search restrictions
        except (InvalidTokenError, FhirError):
            return None
        if int(size or 0) > response_size.MAX_PAGE_BYTES:
            return None  # a page the byte budget may end early: the view's
        matched = ids.split(" ") if ids else []
        if len(matched) != int(found) or not set(ids or "") <= _SPLICED_IDS:
            return None  # an id that is no FHIR id, or a match without its text: the view's
        share = app.extensions["fhirgate_fair_share"]
        limits = share.fresh_limits(hospital_id)
        if limits is None:
            return None
        admitted = share.admit(limits, hospital_id, principal.client_id, WEIGHTS[SEARCH], heavy=True)
        if not isinstance(admitted, Admission):
            return None
        admitted = Admission(admitted.charges, admitted.weight, started)
        total = None if total is None else int(total)
        if total is None and len(matched) < query.count:
            total = len(matched)  # the view's free total: the whole result is on the page
        page = Page(hospital_id, principal.client_id, base, query, 0, int(snapshot or 0), False)
        links = page.links(len(matched), len(matched), total)
        body = bundle_text("searchset", [entries] if entries else [], total=total, links=links).encode()
        share.settle(admitted)
        self._audit(environ, hospital_id, principal, query, matched, args)
        headers = [_CONTENT_TYPE, ("Content-Length", str(len(body))), NO_STORE]
        return body, headers

    @staticmethod
    def _audit(environ, hospital_id, principal, query: SearchQuery, matched: list[str], args) -> None:
        """``args``: the query string's pairs as ``answer`` parsed them (all of them, as the view records)."""
        audit_writer().record(
            fast_path_facts(
                environ,
                hospital_id,
                principal,
                "fhir.search",
                query.resource_type,
                query=urlencode(args)[:1000],
                references=[f"{query.resource_type}/{m}" for m in matched[: response_size.MAX_NOTED]],
            )  # fmt: skip
        )
