"""Turning element values into comparable index values: FHIR R4B search.html, per type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from fhir.search.index_values import (
    CURRENCY_SYSTEM,
    MAX_DATETIME,
    MIN_DATETIME,
    STRING_MAX,
    date_range,
    date_ranges,
    normalize_string,
    number_range,
    number_ranges,
    parse_reference,
    quantity_values,
    reference_values,
    string_values,
    token_values,
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- strings ---------------------------------------------------------------------------------


def test_normalize_string_lowercases_strips_accents_and_collapses_spaces():
    assert normalize_string("  Zoë \t ÉLODIE\nNguyễn  ") == "zoe elodie nguyen"
    assert normalize_string("ﬁle") == "file"  # NFKD splits the ligature
    assert normalize_string("x" * 500) == "x" * STRING_MAX


def test_string_values_of_a_human_name_and_an_address():
    name = {
        "use": "official",
        "family": "Lévesque",
        "given": ["Zoë", "Anne"],
        "prefix": ["Dr."],
        "text": "Z L",
    }
    assert list(string_values(name)) == ["Z L", "Lévesque", "Zoë", "Anne", "Dr."]
    address = {"line": ["1 Main St", "Apt 2"], "city": "Springfield", "postalCode": "62701", "use": "home"}
    assert set(string_values(address)) == {"1 Main St", "Apt 2", "Springfield", "62701"}
    assert list(string_values("plain")) == ["plain"]
    assert list(string_values(42)) == []


# -- tokens ----------------------------------------------------------------------------------


def test_token_of_a_codeable_concept_is_each_coding_and_the_text():
    concept = {
        "coding": [
            {"system": "http://loinc.org", "code": "8867-4", "display": "Heart Rate"},
            {"system": "http://snomed.info/sct", "code": "364075005", "display": "Heart rate (observable)"},
        ],
        "text": "Pulsé",
    }
    assert list(token_values(concept)) == [
        ("http://loinc.org", "8867-4", "heart rate"),
        ("http://snomed.info/sct", "364075005", "heart rate (observable)"),
        (None, None, "pulse"),
    ]
    assert list(token_values({"text": "Only text"})) == [(None, None, "only text")]


def test_a_concepts_text_shares_a_coding_row_when_that_row_answers_text_searches():
    loinc = {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
    bare = {"system": "http://snomed.info/sct", "code": "364075005"}
    # the text starts the display: every :text prefix of it already matches the coding row
    assert list(token_values({"coding": [loinc], "text": "HEART  rate"})) == [
        ("http://loinc.org", "8867-4", "heart rate")
    ]
    assert list(token_values({"coding": [loinc], "text": "Heart"})) == [
        ("http://loinc.org", "8867-4", "heart rate")
    ]
    # a coding without a display carries the text
    assert list(token_values({"coding": [loinc, bare], "text": "Pulse"})) == [
        ("http://loinc.org", "8867-4", "heart rate"),
        ("http://snomed.info/sct", "364075005", "pulse"),
    ]


def test_token_of_a_coding_an_identifier_and_a_contact_point():
    assert list(token_values({"system": "s", "code": "c", "display": "D"}, "Coding")) == [("s", "c", "d")]
    identifier = {"system": "http://mrn", "value": "42", "type": {"text": "MRN"}}
    assert list(token_values(identifier)) == [("http://mrn", "42", "mrn")]
    phone = {"system": "phone", "value": "+1 555", "use": "work"}
    assert list(token_values(phone)) == [(None, "+1 555", None)]  # shape: a ContactPoint
    assert list(token_values(phone, "Identifier")) == [("phone", "+1 555", None)]  # the type decides
    assert list(token_values({"system": "email", "value": "a@b", "rank": 1})) == [(None, "a@b", None)]


def test_token_of_primitives():
    assert list(token_values("final")) == [(None, "final", None)]
    assert list(token_values(True)) == [(None, "true", None)]
    assert list(token_values(False)) == [(None, "false", None)]
    assert list(token_values("")) == []


# -- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2024", utc(2024, 1, 1), utc(2025, 1, 1)),
        ("2024-02", utc(2024, 2, 1), utc(2024, 3, 1)),
        ("2024-12", utc(2024, 12, 1), utc(2025, 1, 1)),
        ("2024-02-29", utc(2024, 2, 29), utc(2024, 3, 1)),
        ("2024-01-02T03:04:05Z", utc(2024, 1, 2, 3, 4, 5), utc(2024, 1, 2, 3, 4, 6)),
        ("2024-01-02T03:04:05+02:00", utc(2024, 1, 2, 1, 4, 5), utc(2024, 1, 2, 1, 4, 6)),
        ("2024-01-01T01:00:00+05:30", utc(2023, 12, 31, 19, 30), utc(2023, 12, 31, 19, 30, 1)),
        ("2024-01-02T03:04:05", utc(2024, 1, 2, 3, 4, 5), utc(2024, 1, 2, 3, 4, 6)),  # no zone: UTC
        ("2024-01-02T03:04:05.123Z", utc(2024, 1, 2, 3, 4, 5, 123000), utc(2024, 1, 2, 3, 4, 5, 124000)),
        ("2024-01-02T03:04:05.5Z", utc(2024, 1, 2, 3, 4, 5, 500000), utc(2024, 1, 2, 3, 4, 5, 600000)),
        (
            "2024-01-02T03:04:05.123456789Z",
            utc(2024, 1, 2, 3, 4, 5, 123456),
            utc(2024, 1, 2, 3, 4, 5, 123457),
        ),
        ("2024-01-02T03:04Z", utc(2024, 1, 2, 3, 4), utc(2024, 1, 2, 3, 5)),
        ("9999", utc(9999, 1, 1), MAX_DATETIME),
        ("9999-12-31", utc(9999, 12, 31), MAX_DATETIME),
    ],
)
def test_date_range_of_partial_dates(text, low, high):
    assert date_range(text) == (low, high)


@pytest.mark.parametrize(
    "text",
    [
        "2024-13",
        "2024-02-30",
        "abc",
        "",
        "24",
        "2024-1-2",
        "2024-01-02T25:00:00Z",
        "2024-01-02T03:04:05+99:00",
        "0000",
        2024,
        None,
        ["2024"],
    ],
)
def test_date_range_of_junk_is_none(text):
    assert date_range(text) is None


def test_ranges_are_utc_and_half_open():
    low, high = date_range("2023-11-05T01:30:00.5-04:00")
    assert low.tzinfo is UTC and high - low == timedelta(milliseconds=100)


def test_period_with_open_ends():
    assert list(date_ranges({"start": "2024-01", "end": "2024-02-10"})) == [
        (utc(2024, 1, 1), utc(2024, 2, 11))
    ]
    assert list(date_ranges({"start": "2024"})) == [(utc(2024, 1, 1), MAX_DATETIME)]
    assert list(date_ranges({"end": "2024"})) == [(MIN_DATETIME, utc(2025, 1, 1))]
    assert list(date_ranges({"start": "junk", "end": None})) == []
    assert MIN_DATETIME.tzinfo is UTC and MAX_DATETIME.tzinfo is UTC


def test_timing_events_and_bounds():
    timing = {
        "event": ["2024-05-01T08:00:00Z", "2024-05-02"],
        "repeat": {"boundsPeriod": {"start": "2024-05-01", "end": "2024-05-31"}, "frequency": 1},
    }
    assert list(date_ranges(timing)) == [
        (utc(2024, 5, 1, 8), utc(2024, 5, 1, 8, 0, 1)),
        (utc(2024, 5, 2), utc(2024, 5, 3)),
        (utc(2024, 5, 1), utc(2024, 6, 1)),
    ]
    assert list(date_ranges({"repeat": {"boundsDuration": {"value": 5}}})) == []


# -- numbers and quantities --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        (100, "99.5", "100.5"),
        (Decimal("1.50"), "1.495", "1.505"),
        (1.5, "1.45", "1.55"),  # a float has lost any trailing zero
        (Decimal("100.0"), "99.95", "100.05"),
        (Decimal("1E+2"), "50", "150"),
        (0, "-0.5", "0.5"),
        (-3, "-3.5", "-2.5"),
        ("0.020", "0.0195", "0.0205"),
    ],
)
def test_number_range_follows_the_written_precision(value, low, high):
    assert number_range(value) == (Decimal(low), Decimal(high))


@pytest.mark.parametrize("value", [True, None, "abc", float("nan"), float("inf"), Decimal("NaN"), {}, []])
def test_number_range_of_junk_is_none(value):
    assert number_range(value) is None


def test_number_ranges_of_a_range():
    assert list(number_ranges({"low": {"value": 1}, "high": {"value": 5}})) == [
        (Decimal("0.5"), Decimal("5.5"))
    ]
    assert list(number_ranges({"low": {"value": 1}})) == []  # open ranges are not indexed


def test_quantity_values():
    quantity = {
        "value": Decimal("5.4"),
        "unit": "mg/dL",
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL",
    }
    assert list(quantity_values(quantity)) == [
        (Decimal("5.35"), Decimal("5.45"), "http://unitsofmeasure.org", "mg/dL", "mg/dL")
    ]
    assert list(quantity_values({"value": 40, "currency": "EUR"})) == [
        (Decimal("39.5"), Decimal("40.5"), CURRENCY_SYSTEM, "EUR", None)
    ]
    age_range = {
        "low": {"value": 5, "unit": "a", "code": "a"},
        "high": {"value": 7, "unit": "a", "code": "a"},
    }
    assert list(quantity_values(age_range)) == [(Decimal("4.5"), Decimal("7.5"), None, "a", "a")]
    assert list(quantity_values({"origin": {"value": 1}, "data": "1 2"})) == []  # SampledData
    assert list(quantity_values({"value": "x"})) == []


# -- references ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/123", ("Patient", "123", "Patient/123")),
        ("Patient/123/_history/2", ("Patient", "123", "Patient/123")),
        ("http://x/fhir/h/Patient/123", ("Patient", "123", "Patient/123")),
        ("https://x/fhir/Observation/a.b-c/_history/7", ("Observation", "a.b-c", "Observation/a.b-c")),
        ("#contained", None),
        ("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", None),
        ("http://example.org/fhir/ValueSet/x|1.0", (None, None, "http://example.org/fhir/ValueSet/x|1.0")),
        ("Patient?identifier=x", (None, None, "Patient?identifier=x")),
        ("", None),
        (42, None),
    ],
)
def test_parse_reference(reference, expected):
    assert parse_reference(reference) == expected


def test_reference_type_element_completes_a_bare_id():
    assert parse_reference("123", "Patient") == ("Patient", "123", "Patient/123")
    assert parse_reference("123") == (None, None, "123")


def test_reference_values():
    assert list(reference_values({"reference": "Patient/1", "display": "x"})) == [
        ("Patient", "1", "Patient/1")
    ]
    assert list(reference_values({"identifier": {"value": "x"}})) == []  # logical references are not indexed
    assert list(reference_values("http://example.org/fhir/Library/a")) == [
        (None, None, "http://example.org/fhir/Library/a")
    ]
    assert list(reference_values({"reference": "#c1"})) == []
