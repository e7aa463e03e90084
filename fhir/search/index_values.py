"""Turn FHIR element values into the values that search compares; FHIR R4B search.html.

Every function takes JSON as received and tolerates wrong shapes: what it cannot read it
skips, it never raises. The search side uses the same functions on query values
(``normalize_string``, ``date_range``, ``number_range``, ``parse_reference``), so both
sides agree by construction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

STRING_MAX = 200
NUMERIC_LIMIT = Decimal("1e24")  # what the index's Numeric(36, 12) holds


def indexable_number(low: Decimal, high: Decimal) -> bool:
    """Whether a number's range fits the index (a larger one is stored, just not searchable)."""
    return abs(low) < NUMERIC_LIMIT and abs(high) < NUMERIC_LIMIT


MIN_DATETIME = datetime.min.replace(tzinfo=UTC)
MAX_DATETIME = datetime.max.replace(tzinfo=UTC)
CURRENCY_SYSTEM = "urn:iso:std:iso:4217"

Token = tuple[str | None, str | None, str | None]
Reference = tuple[str | None, str | None, str]
Quantity = tuple[Decimal, Decimal, str | None, str | None, str | None]
Range = tuple[datetime, datetime]

_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country")
# FHIR R4B datatypes.html#dateTime, with minutes-only times accepted (seen in the wild).
_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?",
    re.ASCII,
)
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}", re.ASCII)
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)
# ContactPoint.system codes (contact-point-system); an Identifier.system is a URI instead.
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def normalize_string(text: str) -> str:
    """Lower-case, strip accents (NFKD minus combining marks), collapse whitespace, truncate."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(text.lower().split())[:STRING_MAX]


def string_values(value: Any) -> Iterator[str]:
    """Yield the searchable strings of a string, HumanName or Address (each part separately)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in (*_NAME_PARTS, *_ADDRESS_PARTS):
            part = value.get(key)
            if part is not None:
                for item in _items(part):
                    if isinstance(item, str):
                        yield item


def _shape(value: dict[str, Any]) -> str:
    """Guess a token element's type from its keys (ambiguous only Identifier vs ContactPoint)."""
    if "coding" in value:
        return "CodeableConcept"
    if "value" in value:
        if "rank" in value:
            return "ContactPoint"
        contact = value.get("system") in _CONTACT_SYSTEMS and "type" not in value and "assigner" not in value
        return "ContactPoint" if contact else "Identifier"
    if "text" in value and not ("code" in value or "system" in value):
        return "CodeableConcept"
    return "Coding"


def _coding(value: Any) -> Token | None:
    if not isinstance(value, dict):
        return None
    display = _text(value.get("display"))
    row = (_text(value.get("system")), _text(value.get("code")), display and normalize_string(display))
    return row if row != (None, None, None) else None


_TOKEN_KINDS = frozenset({"CodeableConcept", "Coding", "Identifier", "ContactPoint"})


def token_values(value: Any, type_hint: str | None = None) -> Iterator[Token]:
    """Yield (system, code, text) rows: FHIR R4B search.html#token, the table of types.

    ``type_hint`` is the element's FHIR type when known; without it the keys decide.
    A ContactPoint's value is a code without a system; text is normalized for ``:text``.
    """
    if isinstance(value, bool):
        yield None, "true" if value else "false", None
    elif isinstance(value, str):
        if value:
            yield None, value, None
    elif isinstance(value, dict):
        kind = type_hint if type_hint in _TOKEN_KINDS else _shape(value)
        if kind == "CodeableConcept":
            yield from _concept_tokens(value)
        elif kind == "ContactPoint":
            if code := _text(value.get("value")):
                yield None, code, None
        elif kind == "Identifier":
            kind_of = value.get("type")
            text = _text(kind_of.get("text")) if isinstance(kind_of, dict) else None
            if (code := _text(value.get("value"))) or _text(value.get("system")):
                yield _text(value.get("system")), code, text and normalize_string(text)
        elif row := _coding(value):
            yield row


def _concept_tokens(concept: dict[str, Any]) -> list[Token]:
    """A CodeableConcept's codings, and its text where no coding row already answers ``:text``.

    ``:text`` matches a prefix of the normalized text, so the concept's text needs no row of its
    own when it starts a coding's display, or can ride on the first coding without a display:
    one row fewer for the usual concept whose text repeats its display.
    """
    rows = [row for coding in _items(concept.get("coding")) if (row := _coding(coding))]
    text = _text(concept.get("text"))
    if not text:
        return rows
    text = normalize_string(text)
    if any(display and display.startswith(text) for _, _, display in rows):
        return rows
    for position, (system, code, display) in enumerate(rows):
        if display is None:
            rows[position] = (system, code, text)
            return rows
    rows.append((None, None, text))
    return rows


@lru_cache(maxsize=64)
def _zone(offset: str) -> timezone:
    if offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))


def _plus(low: datetime, width: timedelta) -> datetime:
    try:
        return low + width
    except OverflowError:  # the last instant of year 9999
        return MAX_DATETIME


def _next_month(year: int, month: int) -> datetime:
    if month == 12:
        return datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else MAX_DATETIME
    return datetime(year, month + 1, 1, tzinfo=UTC)


def date_range(text: Any) -> Range | None:
    """Return the [low, high) UTC range a date, dateTime or instant stands for.

    FHIR R4B search.html#date: "2024" is all of 2024, a time to the second is that second,
    fractional seconds narrow it further. Values without a time zone are taken as UTC.
    """
    if not isinstance(text, str):
        return None
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        y = int(year)
        if month is None:
            low = datetime(y, 1, 1, tzinfo=UTC)
            return low, (datetime(y + 1, 1, 1, tzinfo=UTC) if y < 9999 else MAX_DATETIME)
        m = int(month)
        if day is None:
            return datetime(y, m, 1, tzinfo=UTC), _next_month(y, m)
        if hour is None:
            low = datetime(y, m, int(day), tzinfo=UTC)
            return low, _plus(low, timedelta(days=1))
        micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
        local = datetime(y, m, int(day), int(hour), int(minute), int(second or 0), micro, _zone(zone or "Z"))
        if second is None:
            width = timedelta(minutes=1)
        elif fraction:  # .5 is a tenth of a second wide; beyond microseconds, one microsecond
            width = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
        else:
            width = timedelta(seconds=1)
        low = local.astimezone(UTC)
        return low, _plus(low, width)
    except (ValueError, OverflowError):
        return None


def _period(value: dict[str, Any]) -> Range | None:
    start = date_range(value.get("start"))
    end = date_range(value.get("end"))
    if start is None and end is None:
        return None
    return (start[0] if start else MIN_DATETIME), (end[1] if end else MAX_DATETIME)


def date_ranges(value: Any) -> Iterator[Range]:
    """Yield the ranges of a date/dateTime/instant, a Period or a Timing (events and bounds)."""
    if isinstance(value, str):
        if found := date_range(value):
            yield found
    elif isinstance(value, dict):
        if "start" in value or "end" in value:
            if found := _period(value):
                yield found
        elif "event" in value or "repeat" in value:
            for event in _items(value.get("event")):
                if found := date_range(event):
                    yield found
            repeat = value.get("repeat")
            bounds = repeat.get("boundsPeriod") if isinstance(repeat, dict) else None
            if isinstance(bounds, dict) and (found := _period(bounds)):
                yield found


def number_range(value: Any) -> tuple[Decimal, Decimal] | None:
    """Return the [low, high) range a number's written precision implies; search.html#number.

    100 is [99.5, 100.5), 1.50 is [1.495, 1.505). A float has lost its trailing zeros (1.50
    arrives as 1.5), so parse JSON with ``parse_float=Decimal`` where that matters.
    """
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float | str):
            number = Decimal(repr(value) if isinstance(value, float) else value)
        else:
            return None
    except (ArithmeticError, ValueError):  # InvalidOperation and Overflow are ArithmeticErrors
        return None
    if not number.is_finite():
        return None
    exponent = number.as_tuple().exponent
    half = Decimal((0, (5,), exponent - 1))  # type: ignore[operator]
    return number - half, number + half


def _range_bounds(value: dict[str, Any]) -> tuple[Decimal, Decimal, dict[str, Any]] | None:
    """Return a Range's bounds when both are present (an open Range is not indexed)."""
    low, high = value.get("low"), value.get("high")
    if not (isinstance(low, dict) and isinstance(high, dict)):
        return None
    lows, highs = number_range(low.get("value")), number_range(high.get("value"))
    if lows is None or highs is None:
        return None
    return lows[0], highs[1], low


def number_ranges(value: Any) -> Iterator[tuple[Decimal, Decimal]]:
    """Yield the range of a decimal/integer, or of a Range's two bounds."""
    if isinstance(value, dict):
        if bounds := _range_bounds(value):
            yield bounds[0], bounds[1]
    elif found := number_range(value):
        yield found


def quantity_values(value: Any) -> Iterator[Quantity]:
    """Yield (low, high, system, code, unit) of a Quantity (Age, Duration, Money, ...) or Range."""
    if not isinstance(value, dict):
        return
    if "value" in value:
        found = number_range(value["value"])
        if found is None:
            return
        if currency := _text(value.get("currency")):  # Money
            yield found[0], found[1], CURRENCY_SYSTEM, currency, None
        else:
            unit = _text(value.get("unit"))
            yield found[0], found[1], _text(value.get("system")), _text(value.get("code")), unit
    elif bounds := _range_bounds(value):
        low, high, quantity = bounds
        yield (
            low,
            high,
            _text(quantity.get("system")),
            _text(quantity.get("code")),
            _text(quantity.get("unit")),
        )


def parse_reference(reference: Any, type_element: Any = None) -> Reference | None:
    """Return (type, id, "Type/id") for a literal reference; FHIR R4B references.html#literal.

    ``Patient/1``, ``Patient/1/_history/2`` and ``http://host/fhir/Patient/1`` all give
    Patient 1. Contained (``#x``) and ``urn:`` references give None. Anything else (a
    canonical, an unparsable URL) comes back as (type, None, reference), the type from the
    ``type`` element if there is one.
    """
    if not isinstance(reference, str) or not reference or reference[0] == "#" or reference.startswith("urn:"):
        return None
    path = reference.split("/_history/", 1)[0]
    parts = path.rsplit("/", 2)
    if len(parts) >= 2 and _TYPE.fullmatch(parts[-2]) and _ID.fullmatch(parts[-1]):
        return parts[-2], parts[-1], f"{parts[-2]}/{parts[-1]}"
    if (
        len(parts) == 1
        and isinstance(type_element, str)
        and _TYPE.fullmatch(type_element)
        and _ID.fullmatch(path)
    ):
        return type_element, path, f"{type_element}/{path}"
    # Not a FHIR URL: no id, but a ``type`` element still says what it points at.
    typed = type_element if isinstance(type_element, str) and _TYPE.fullmatch(type_element) else None
    return typed, None, reference


def identifier_types(value: Any) -> Iterator[tuple[str | None, str, str]]:
    """Yield (type system, type code, value) of an Identifier with a type and a value (``:of-type``)."""
    if not isinstance(value, dict) or not (identifier := _text(value.get("value"))):
        return
    kind = value.get("type")
    for coding in _items(kind.get("coding")) if isinstance(kind, dict) else ():
        if isinstance(coding, dict) and (code := _text(coding.get("code"))):
            yield _text(coding.get("system")), code, identifier


def reference_identifiers(value: Any) -> Iterator[Token]:
    """Yield (system, value, type) of a Reference's identifier (``:identifier``); the type is
    the one its literal reference or its ``type`` names, if any."""
    identifier = value.get("identifier") if isinstance(value, dict) else None
    if isinstance(identifier, dict) and (code := _text(identifier.get("value"))):
        yield _text(identifier.get("system")), code, reference_type(value)


def reference_type(value: Any) -> str | None:
    """Return the resource type a Reference points at, from its string or its ``type``."""
    if not isinstance(value, dict):
        return None
    parsed = parse_reference(value.get("reference"), value.get("type"))
    if parsed and parsed[0]:
        return parsed[0]
    return _text(value.get("type"))


def reference_values(value: Any) -> Iterator[Reference]:
    """Yield (type, id, reference) of a Reference, or (None, None, url) of a canonical/uri."""
    if isinstance(value, str):
        if value and value[0] != "#":
            yield None, None, value
    elif isinstance(value, dict) and (parsed := parse_reference(value.get("reference"), value.get("type"))):
        yield parsed


def uri_values(value: Any) -> Iterator[str]:
    """Yield a uri, url, canonical, oid or uuid."""
    if isinstance(value, str) and value:
        yield value
