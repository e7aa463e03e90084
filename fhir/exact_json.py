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
# version string inside quotes is not one) that a float would print otherwise than it is written:
# an exponent, a fraction ending in 0 (but ``.0`` alone: ``11.0`` prints as ``11.0``), one that
# starts with four zeros (printed 1e-05), or 16 digits and more with a fraction. One search, in C: a
# 500-entry Bundle holds thousands of numbers. A match inside a string only costs the slower reading.
_IMPRECISE = re.compile(
    rb"(?<=[:\[,])\s*-?"
    rb"(?:\d+(?:\.\d+)?[eE][+-]?\d+|\d+\.\d+0|\d+\.0000\d*|(?=[\d.]{17})\d+\.\d+)"
    rb"(?=\s*[,\]}])"
)


def _imprecise(data: bytes) -> bool:
    """Whether a float would print some number of ``data`` otherwise than it is written."""
    return _IMPRECISE.search(data) is not None


class WrittenDecimal(Decimal):
    """A decimal that remembers how it was written (``0.0000001`` would print as ``1E-7``)."""

    __slots__ = ("text",)

    def __new__(cls, text: str):
        number = super().__new__(cls, text)
        number.text = text
        return number


def _written_as_read(value: object, data: bytes) -> bool:
    """Whether writing ``value`` gives ``data`` back byte for byte: then every number in it was
    written as a float prints it. Compact JSON from a program (most bodies) passes in about a
    millisecond a Bundle, without the scan for numbers (``_imprecise``)."""
    try:
        return orjson.dumps(value) == data
    except orjson.JSONEncodeError:
        return False


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def loads(raw: bytes | str) -> object:
    """The JSON value of ``raw``; decimals that a float would change come back as ``Decimal``.
    Raises ``ValueError`` (orjson's ``JSONDecodeError`` is one) on anything but strict JSON."""
    data = raw.encode() if isinstance(raw, str) else raw
    fast = orjson.loads(data)  # also the strictness of the slow path (no NaN, no trailing commas...)
    if _written_as_read(fast, data) or not _imprecise(data):
        return fast
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
