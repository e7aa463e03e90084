"""Scopes in the words a patient reads (app/web/scope_words.py)."""

from __future__ import annotations

import pytest

from app.web.scope_words import access_in_words, scope_in_words

TYPES = ("Condition", "Observation", "Patient", "Practitioner", "Procedure")


@pytest.mark.parametrize(
    ("scope", "options", "words"),
    [
        ("patient/Observation.rs", {}, "Read your lab results, vital signs and other measurements"),
        ("patient/Observation.rs?category=laboratory", {}, "Read your lab results"),
        ("patient/MedicationRequest.cruds", {}, "Read, add to, change and delete your prescriptions"),
        ("patient/*.rs", {"rest": True}, "Read everything else in your record"),
        ("user/*.rs", {}, "Read every record you can see at this hospital"),
        ("patient/Condition.rs", {"staff": True}, "Read the patient's conditions and diagnoses"),
    ],
)
def test_scopes_in_words(scope, options, words):
    assert scope_in_words(scope, **options) == words


def test_a_wildcard_with_one_kind_kept_back_reads_as_everything_except():
    granted = [f"patient/{name}.rs" for name in TYPES if name != "Condition"]
    expected = "Read everything in your record except your conditions and diagnoses"
    assert access_in_words(granted, TYPES) == [expected]
    only_patient = access_in_words(["patient/Patient.rs"], TYPES)
    assert only_patient == ["Read your name, birth date and contact details"]
