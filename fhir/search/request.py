"""Parsing a FHIR search request into a ``SearchQuery`` (FHIR R4B search.html).

Names are checked against the registry: an unknown parameter, modifier or prefix is a 400
unless the client sent ``Prefer: handling=lenient``, in which case it is ignored and
reported back in an OperationOutcome entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from app.unstorable import URL_UNSTORABLE
from fhir.errors import FhirError
from fhir.model_classes import is_resource_type
from fhir.search.registry import SearchParam, indexed_params, is_identifier_param, searchable_params
from fhir.subsetting import element_names, summary_mode

DEFAULT_COUNT = 20
MAX_COUNT = 1000
MAX_VALUES = 100  # OR values plus AND repetitions of one request, in total
MAX_INCLUDES = 10  # _include plus _revinclude: each costs queries
ITERATE_ROUNDS = 3  # how far an :iterate include follows the resources it included
ITERATE_MODIFIERS = ("iterate", "recurse")  # recurse: R3's name, still sent by some clients
MAX_SORT_KEYS = 5
# What a search may cost before it runs (repeated parameters, chains, includes, sorts): each
# criterion value is one subquery on an index; these weigh how much of an index it reads.
MAX_SEARCH_COST = 100
VALUE_COST = 1
SCANNING_MODIFIER_COST = 5  # :contains, :text, :not, :missing, :above: no index prefix to seek
CHAIN_COST = 10  # each link of a chain or _has: a search of another type, then a join through references
MAX_HOPS = 3  # links of chains and _has in one parameter (search.html#chaining, #has)
SORT_KEY_COST = 10  # the key's extreme value for every match
INCLUDE_COST = 5
REVINCLUDE_COST = 10
SCANNING_MODIFIERS = frozenset({"contains", "text", "not", "missing", "above"})

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
# Which modifiers each parameter type supports (search.html#modifiers).
MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "missing", "of-type"},  # of-type: on Identifier parameters only
    "reference": {"missing", "identifier"},  # plus :[Type]
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "uri": {"below", "above", "missing"},
}
PREFIXED_TYPES = ("date", "number", "quantity")

CONTROL = frozenset(
    [
        "_count",
        "_sort",
        "_total",
        "_summary",
        "_elements",
        "_include",
        "_revinclude",
        "_format",
        "_cursor",
        "_pretty",
    ]
)
SPECIAL = {"_id", "_lastUpdated"}


@dataclass(frozen=True)
class Hop:
    """One link of a chained or reverse-chained parameter (search.html#chaining, #has).

    Forward (``subject:Patient.name``): from the ``param`` reference of the current type to
    resources of ``resource_type``. Reverse (``_has:Observation:patient:code``): back from
    resources of ``resource_type`` whose ``param`` points at the current type.
    """

    param: SearchParam
    resource_type: str
    reverse: bool = False


@dataclass(frozen=True)
class Criterion:
    """One parameter occurrence: its values are ORed; criteria are ANDed.

    With ``hops``, ``name``, ``param`` and ``modifier`` belong to the last hop's type.
    """

    name: str  # the parameter code, or _id / _lastUpdated
    type: str
    param: SearchParam | None
    modifier: str | None
    values: tuple[str, ...]
    hops: tuple[Hop, ...] = ()


@dataclass(frozen=True)
class Include:
    """``Type:param[:Target]`` (``param`` None: ``*``, every reference); ``iterate``: applied to
    the resources included too (search.html#revinclude, ``:iterate``)."""

    source_type: str
    param: SearchParam | None
    target_type: str | None
    iterate: bool = False


@dataclass(frozen=True)
class SortKey:
    name: str
    type: str
    param: SearchParam | None
    descending: bool


@dataclass(frozen=True)
class SearchQuery:
    resource_type: str
    criteria: tuple[Criterion, ...] = ()
    sort: tuple[SortKey, ...] = ()
    count: int = DEFAULT_COUNT
    total: str = "accurate"  # accurate | none
    summary_count: bool = False
    summary: str | None = None  # _summary=true|text|data (fhir.subsetting)
    elements: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    ignored: tuple[str, ...] = field(default=())
    # The (name, value) pairs as applied: what the self link and the paging cursor carry, so
    # that neither claims a parameter the server left out under handling=lenient.
    applied: tuple[tuple[str, str], ...] = field(default=())
    # compartment search (search.html#compartments): only members of this Patient's compartment
    compartment: str | None = None


def _split_values(raw: str) -> list[str]:
    """Comma separates OR values; ``\\,`` is a literal comma (search.html#escaping). ``\\$``
    stays escaped: a composite splits its value there (``unescape_dollar`` for the others)."""
    parts, current, escaped = [], [], False
    for ch in raw:
        if escaped:
            current.append("\\$" if ch == "$" else ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def unescape_dollar(value: str) -> str:
    return value.replace("\\$", "$")


def split_composite(value: str) -> tuple[str, str] | None:
    """``token$value`` at the one unescaped ``$`` (search.html#composite), each part unescaped;
    None when there is not exactly one."""
    parts = re.split(r"(?<!\\)\$", value)
    if len(parts) != 2 or not parts[1]:
        return None
    return unescape_dollar(parts[0]), unescape_dollar(parts[1])


def _count(raw: str) -> int:
    if not re.fullmatch(r"\d{1,9}", raw):
        raise FhirError.invalid("_count must be a whole number.")
    return min(int(raw), MAX_COUNT)


class _Parser:
    def __init__(self, resource_type: str, lenient: bool):
        self.resource_type = resource_type
        self.lenient = lenient
        self.ignored: list[str] = []
        self.params = indexed_params(resource_type)

    def problem(self, message: str) -> None:
        if not self.lenient:
            raise FhirError.invalid(message)
        self.ignored.append(message)

    def criterion(self, key: str, raw_values: list[str]) -> Criterion | None:
        criterion = self.parameter(self.resource_type, key, tuple(raw_values), ())
        if criterion is None or criterion.type == "composite":
            return criterion
        return replace(criterion, values=tuple(unescape_dollar(value) for value in criterion.values))

    def parameter(
        self, resource_type: str, key: str, values: tuple[str, ...], hops: tuple[Hop, ...]
    ) -> Criterion | None:
        """``key`` on ``resource_type``, reached through ``hops``: plain, chained or ``_has``."""
        if len(hops) > MAX_HOPS:
            self.problem(f"A parameter may follow at most {MAX_HOPS} chain and _has links.")
            return None
        if key.startswith("_has:"):
            return self.reverse_chained(resource_type, key, values, hops)
        name, _, modifier = key.partition(":")
        if "." in name or "." in modifier:
            return self.chained(resource_type, key, values, hops)
        if name in SPECIAL:
            if modifier:
                self.problem(f"{name} takes no modifier.")
                return None
            return Criterion(name, "token" if name == "_id" else "date", None, None, values, hops)
        param = searchable_params(resource_type).get(name)
        if param is None:
            self.problem(f"Unknown search parameter {name[:80]!r} for {resource_type}.")
            return None
        if modifier and not self.modifier_ok(param, modifier):
            self.problem(f"The modifier :{modifier[:40]} is not supported on {name}.")
            return None
        return Criterion(name, param.type, param, modifier or None, values, hops)

    def modifier_ok(self, param: SearchParam, modifier: str) -> bool:
        if modifier == "of-type":
            return is_identifier_param(param)
        if modifier in MODIFIERS.get(param.type, ()):
            return True
        return param.type == "reference" and modifier in param.targets

    def chained(
        self, resource_type: str, key: str, values: tuple[str, ...], hops: tuple[Hop, ...]
    ) -> Criterion | None:
        """``subject:Patient.name``, ``subject.name`` (one target type), ``a.b.c`` (several links)."""
        head, _, tail = key.partition(".")
        name, _, target_type = head.partition(":")
        param = indexed_params(resource_type).get(name)
        if param is None or param.type != "reference":
            self.problem(f"{name[:80]!r} is not a reference parameter of {resource_type}.")
            return None
        if not target_type:
            if len(param.targets) != 1:
                self.problem(f"Name the target type to chain {name}: {name}:Type.{tail[:40]}.")
                return None
            target_type = param.targets[0]
        if target_type not in param.targets or not is_resource_type(target_type):
            self.problem(f"{name} cannot point at {target_type[:64]}.")
            return None
        return self.parameter(target_type, tail, values, (*hops, Hop(param, target_type)))

    def reverse_chained(
        self, resource_type: str, key: str, values: tuple[str, ...], hops: tuple[Hop, ...]
    ) -> Criterion | None:
        """``_has:Type:reference:parameter`` (search.html#has): ``Type`` resources whose
        ``reference`` points at this one and match ``parameter`` (itself perhaps another _has)."""
        parts = key.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            self.problem(f"_has takes _has:Type:reference:parameter, got {key[:80]!r}.")
            return None
        _, source_type, name, rest = parts
        param = indexed_params(source_type).get(name) if is_resource_type(source_type) else None
        if param is None or param.type != "reference":
            self.problem(f"{name[:80]!r} is not a reference parameter of {source_type[:64]}.")
            return None
        if resource_type not in param.targets:
            self.problem(f"{source_type}.{name} cannot point at {resource_type}.")
            return None
        return self.parameter(source_type, rest, values, (*hops, Hop(param, source_type, reverse=True)))

    def sort(self, raw: str) -> list[SortKey]:
        keys = []
        for item in raw.split(","):
            descending = item.startswith("-")
            name = item[1:] if descending else item
            if name in ("_id", "_lastUpdated"):
                keys.append(SortKey(name, "token" if name == "_id" else "date", None, descending))
                continue
            param = self.params.get(name)
            if param is None or param.type not in ("string", "token", "date", "number", "quantity", "uri"):
                self.problem(f"Cannot sort by {name[:80]!r}.")
                continue
            keys.append(SortKey(name, param.type, param, descending))
        return keys

    def include(self, raw: str, reverse: bool, iterate: bool = False) -> Include | None:
        if raw == "*" and not reverse:
            return Include(self.resource_type, None, None, iterate)
        parts = raw.split(":")
        if len(parts) not in (2, 3):
            self.problem(f"_include and _revinclude take Type:param[:TargetType], got {raw[:80]!r}.")
            return None
        source_type, name = parts[0], parts[1]
        target_type = parts[2] if len(parts) == 3 else None
        # Without :iterate an include starts at the matches: their type.
        if not is_resource_type(source_type) or (
            not reverse and not iterate and source_type != self.resource_type
        ):
            self.problem(f"Cannot include through {raw[:80]!r}.")
            return None
        if name == "*":
            if reverse or (target_type and not is_resource_type(target_type)):
                self.problem(f"{raw[:80]!r}: only _include takes *, every reference of a type.")
                return None
            return Include(source_type, None, target_type, iterate)
        param = indexed_params(source_type).get(name)
        if param is None or param.type != "reference" or (target_type and target_type not in param.targets):
            self.problem(f"{raw[:80]!r} does not name a reference parameter.")
            return None
        if (
            reverse
            and not iterate
            and self.resource_type not in param.targets
            and "Resource" not in param.targets
        ):
            self.problem(f"{raw[:80]!r} cannot point at {self.resource_type}.")
            return None
        return Include(source_type, param, target_type, iterate)


def search_cost(criteria, sort, includes, revincludes) -> int:
    """What a search costs in units (see ``MAX_SEARCH_COST``), judged before it runs."""
    includes = [i for i in includes for _ in range(1 + ITERATE_ROUNDS if i.iterate else 1)]
    revincludes = [i for i in revincludes for _ in range(1 + ITERATE_ROUNDS if i.iterate else 1)]
    cost = 0
    for criterion in criteria:
        each = SCANNING_MODIFIER_COST if criterion.modifier in SCANNING_MODIFIERS else VALUE_COST
        cost += each * len(criterion.values) * (CHAIN_COST * len(criterion.hops) or 1)
    return (
        cost + SORT_KEY_COST * len(sort) + INCLUDE_COST * len(includes) + REVINCLUDE_COST * len(revincludes)
    )


def parse_search(resource_type: str, args: list[tuple[str, str]], *, lenient: bool) -> SearchQuery:
    """Turn the (name, value) pairs of a search into a ``SearchQuery``."""
    _refuse_unstorable(args)
    parser = _Parser(resource_type, lenient)
    criteria: list[Criterion] = []
    sort: list[SortKey] = []
    includes: list[Include] = []
    revincludes: list[Include] = []
    elements: list[str] = []
    count, total, summary_count, summary = DEFAULT_COUNT, "accurate", False, None
    value_count = 0
    applied: list[tuple[str, str]] = []
    for key, raw in args:
        problems_before = len(parser.ignored)
        if key == "_sort":
            keys = parser.sort(raw)
            sort.extend(keys)
            if keys:  # only the keys it sorts by, when lenient handling left some out
                applied.append((key, ",".join(("-" if k.descending else "") + k.name for k in keys)))
            continue
        if key in CONTROL:
            if key == "_count":
                count = _count(raw)
            elif key == "_total":
                if raw not in ("none", "estimate", "accurate"):
                    parser.problem("_total takes none, estimate or accurate.")
                total = "none" if raw == "none" else "accurate"
            elif key == "_summary":
                try:
                    summary = summary_mode(raw)
                except FhirError as error:
                    parser.problem(error.issues[0].diagnostics)
                summary_count = summary == "count"
            elif key == "_elements":
                try:
                    elements.extend(element_names(resource_type, [raw]))
                except FhirError as error:
                    parser.problem(error.issues[0].diagnostics)
            elif key in ("_include", "_revinclude"):
                include = parser.include(raw, reverse=key == "_revinclude")
                if include:
                    (revincludes if key == "_revinclude" else includes).append(include)
        elif key.partition(":")[0] in ("_include", "_revinclude"):
            name, _, modifier = key.partition(":")
            if modifier not in ITERATE_MODIFIERS:
                parser.problem(f"{name} takes the modifier :iterate only, not :{modifier[:20]}.")
            elif include := parser.include(raw, reverse=name == "_revinclude", iterate=True):
                (revincludes if name == "_revinclude" else includes).append(include)
        else:
            values = _split_values(raw)
            value_count += len(values)
            if value_count > MAX_VALUES:
                raise FhirError.invalid(f"A search may carry at most {MAX_VALUES} values.")
            criterion = parser.criterion(key, values)
            if criterion is not None:
                criteria.append(criterion)
        if len(parser.ignored) == problems_before:
            applied.append((key, raw))
    includes, revincludes = list(dict.fromkeys(includes)), list(dict.fromkeys(revincludes))
    if len(includes) + len(revincludes) > MAX_INCLUDES:
        raise FhirError.invalid(f"A search may carry at most {MAX_INCLUDES} _include and _revinclude.")
    if len(sort) > MAX_SORT_KEYS:
        raise FhirError.invalid(f"A search may sort by at most {MAX_SORT_KEYS} keys.")
    cost = search_cost(criteria, sort, includes, revincludes)
    if cost > MAX_SEARCH_COST:
        raise FhirError.simple(
            400,
            "too-costly",
            f"This search would cost {cost} units, more than the {MAX_SEARCH_COST} a search may: each"
            f" value costs {VALUE_COST} ({SCANNING_MODIFIER_COST} with :contains, :text, :not, :missing or"
            f" :above), each chain or _has link multiplies that by {CHAIN_COST}, a sort key"
            f" {SORT_KEY_COST}, an _include {INCLUDE_COST} and a _revinclude {REVINCLUDE_COST}."
            " Split or narrow it.",
        )
    return SearchQuery(
        resource_type,
        tuple(criteria),
        tuple(sort),
        count,
        total,
        summary_count,
        summary if summary in ("true", "text", "data") else None,
        tuple(elements),
        tuple(includes),
        tuple(revincludes),
        tuple(parser.ignored),
        tuple(applied),
    )


def _refuse_unstorable(args: list[tuple[str, str]]) -> None:
    """No control character in any name or value: every search, conditional criteria, Bundle
    GET entry and scope restriction is decoded into these pairs (a %00 becomes a NUL, which
    PostgreSQL cannot hold); the request's own URL was checked before (``app.input_check``)."""
    for key, value in args:
        if URL_UNSTORABLE.search(key) or URL_UNSTORABLE.search(value):
            raise FhirError.invalid("A search parameter holds a NUL or another control character.")
