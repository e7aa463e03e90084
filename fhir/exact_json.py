"""JSON in and out of the FHIR store with every decimal as written (FHIR R4B datatypes.html#decimal:
"the precision of the decimal value has significance": ``1.50`` is not ``1.5``).

orjson reads a number with a fraction as a float, which keeps neither trailing zeros nor more
than 17 significant digits, nor the exponent form. A body that holds such a number is read
with the standard library instead, its numbers as ``Decimal``; ``dumps`` writes a ``Decimal``
back as the text it came from. Every other body — nearly all — keeps orjson's speed: a float
round-trips those exactly.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import orjson

# A JSON number (after ":", "[" or "," and before ",", "]" or "}"; a timestamp's fraction or a
# version string inside quotes is not one).
_NUMBER = re.compile(rb"(?<=[:\[,])\s*-?(\d+)(\.\d+)?([eE][+-]?\d+)?(?=\s*[,\]}])")


def _imprecise(data: bytes) -> bool:
    """Whether a float would print some number of ``data`` otherwise than it is written: a
    fraction ending in 0, one that starts with four zeros (printed 1e-05), 16 or more digits, or
    an exponent. A match inside a string only costs the slower reading."""
    for match in _NUMBER.finditer(data):
        whole, fraction, exponent = match.groups()
        if exponent or (
            fraction
            and (fraction.endswith(b"0") or fraction.startswith(b".0000") or len(whole) + len(fraction) > 16)
        ):
            return True
    return False


class WrittenDecimal(Decimal):
    """A decimal that remembers how it was written (``0.0000001`` would print as ``1E-7``)."""

    __slots__ = ("text",)

    def __new__(cls, text: str):
        number = super().__new__(cls, text)
        number.text = text
        return number


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def loads(raw: bytes | str) -> object:
    """The JSON value of ``raw``; decimals that a float would change come back as ``Decimal``.
    Raises ``ValueError`` (orjson's ``JSONDecodeError`` is one) on anything but strict JSON."""
    data = raw.encode() if isinstance(raw, str) else raw
    if not _imprecise(data):
        return orjson.loads(data)
    fast = orjson.loads(data)  # the same strictness as the fast path (no NaN, no trailing commas...)
    try:
        return json.loads(data, parse_float=WrittenDecimal, parse_constant=_refuse_constant)
    except RecursionError:
        return fast  # nested beyond the standard library's reach: the depth check refuses it next


def _exact(value: object):
    if isinstance(value, Decimal):
        return orjson.Fragment(getattr(value, "text", None) or str(value))
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(value: object) -> bytes:
    return orjson.dumps(value, default=_exact)
