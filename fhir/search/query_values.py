"""The values of a search request: prefixes, dates, numbers, quantities, tokens, references.

The ranges come from ``index_values`` — the same functions that index resources — so a
query and the index agree on what ``2024`` or ``100`` stands for (FHIR R4B search.html).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fhir.errors import FhirError
from fhir.search.index_values import NUMERIC_LIMIT, date_range, number_range

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


def split_prefix(raw: str) -> tuple[str, str]:
    if len(raw) > 2 and raw[:2] in PREFIXES:
        return raw[:2], raw[2:]
    return "eq", raw


def parse_date_value(raw: str) -> tuple[str, datetime, datetime]:
    prefix, text = split_prefix(raw)
    bounds = date_range(text.strip())
    if bounds is None:
        raise FhirError.invalid(f"{raw[:60]!r} is not a FHIR date, dateTime or instant.")
    return prefix, bounds[0], bounds[1]


def parse_number_value(raw: str) -> tuple[str, Decimal, Decimal, Decimal]:
    """(prefix, exact value, low, high) of ``[prefix]number``."""
    prefix, text = split_prefix(raw)
    text = text.strip()
    bounds = number_range(text) if NUMBER.fullmatch(text) else None
    if bounds is None or not abs(bounds[0]) < NUMERIC_LIMIT:
        raise FhirError.invalid(f"{raw[:60]!r} is not a number this server can compare.")
    return prefix, Decimal(text), bounds[0], bounds[1]


@dataclass(frozen=True)
class QuantityValue:
    prefix: str
    value: Decimal
    low: Decimal
    high: Decimal
    system: str | None
    code: str | None


def parse_quantity_value(raw: str) -> QuantityValue:
    """``[prefix]number|system|code``, ``number||code`` or a bare number (search.html#quantity)."""
    number, _, rest = raw.partition("|")
    prefix, value, low, high = parse_number_value(number)
    system, _, code = rest.partition("|")
    return QuantityValue(prefix, value, low, high, system or None, code or None)


def parse_token_value(raw: str) -> tuple[str | None, str | None, bool]:
    """``system|code`` → (system, code, system given); ``|code`` means the code has no system."""
    if "|" not in raw:
        return None, raw, False
    system, _, code = raw.partition("|")
    return system, code or None, True


def parse_reference_value(raw: str, base_url: str) -> tuple[str | None, str]:
    """``Type/id``, ``id`` or an absolute URL on this server → (type or None, id)."""
    value = raw[len(base_url) + 1 :] if raw.startswith(base_url + "/") else raw
    value = value.split("/_history/", 1)[0]
    parts = value.split("/")
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    if len(parts) == 1:
        return None, value
    return None, raw
