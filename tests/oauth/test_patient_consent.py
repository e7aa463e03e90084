"""What a patient's ticks grant (oauth.patient_consent), wildcards offered type by type."""

from __future__ import annotations

from oauth.patient_consent import granted_scope, patient_offer

TYPES = ("Condition", "Observation", "Patient", "Practitioner", "Procedure")


def test_a_wildcard_is_offered_as_its_featured_types_then_everything_else():
    offer = patient_offer("launch/patient patient/*.rs patient/Condition.rs user/*.rs openid", TYPES)
    assert offer.context == ("launch/patient", "openid")
    assert offer.choices == (
        "patient/Patient.rs",
        "patient/Condition.rs",
        "patient/Observation.rs",
        "patient/Procedure.rs",
        "patient/*.rs",
    )
    assert [scope for scope, _ in offer.refused] == ["user/*.rs"]


def test_all_ticked_stays_a_wildcard():
    offer = patient_offer("launch/patient patient/*.rs", TYPES)
    assert granted_scope(offer, list(offer.choices), TYPES) == "launch/patient patient/*.rs"


def test_one_type_kept_back_lists_every_other_type():
    offer = patient_offer("launch/patient patient/*.rs", TYPES)
    ticked = [scope for scope in offer.choices if scope != "patient/Condition.rs"]
    granted = granted_scope(offer, ticked, TYPES).split()
    assert len(granted) == len(set(granted)) and granted[0] == "launch/patient"
    assert set(granted[1:]) == {
        "patient/Observation.rs",
        "patient/Patient.rs",
        "patient/Practitioner.rs",
        "patient/Procedure.rs",
    }


def test_everything_else_unticked_keeps_only_the_featured_types_ticked():
    offer = patient_offer("patient/*.read", TYPES)
    granted = granted_scope(offer, ["patient/Patient.read", "patient/Observation.read"], TYPES)
    assert granted == "patient/Patient.read patient/Observation.read"


def test_nothing_ticked_grants_only_the_context_and_ticks_not_offered_are_ignored():
    offer = patient_offer("launch/patient offline_access patient/Observation.rs", TYPES)
    assert (
        granted_scope(offer, ["patient/Condition.rs", "system/*.rs"], TYPES)
        == "launch/patient offline_access"
    )
