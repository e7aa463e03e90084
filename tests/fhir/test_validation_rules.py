"""What a write must satisfy beyond structure (FHIR R4B): required bindings, no nulls or
empties, reference target types, safe narrative XHTML, the common invariants — every problem
listed in one OperationOutcome, and nothing stored."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.conftest import count_stored

XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def observation(**extra) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "weight"}, **extra}


def refused(fhir, app, resource: dict) -> list[dict]:
    with app.app_context():
        before = count_stored("fhir_resources")
    response = fhir.post(f"/{resource['resourceType']}", resource)
    assert response.status_code == 400, response.get_json()
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    with app.app_context():
        db.session.rollback()
        assert count_stored("fhir_resources") == before
    return outcome["issue"]


@pytest.mark.parametrize(
    "resource,expression",
    [
        ({"resourceType": "Patient", "gender": "robot"}, "Patient.gender"),
        (observation(status="done"), "Observation.status"),
        ({"resourceType": "Patient", "name": [{"use": "nickname-ish"}]}, "Patient.name[0].use"),
        ({"resourceType": "Patient", "telecom": [{"system": "pager-2"}]}, "Patient.telecom[0].system"),
    ],
)
def test_a_code_outside_its_required_binding_is_refused(fhir, app, resource, expression):
    issues = refused(fhir, app, resource)
    assert [i["code"] for i in issues] == ["code-invalid"]
    assert issues[0]["expression"] == [expression]


@pytest.mark.parametrize(
    "resource,expression",
    [
        ({"resourceType": "Patient", "gender": None}, "Patient.gender"),
        ({"resourceType": "Patient", "name": []}, "Patient.name"),
        ({"resourceType": "Patient", "name": [{}]}, "Patient.name[0]"),
        ({"resourceType": "Patient", "name": [{"family": ""}]}, "Patient.name[0].family"),
        ({"resourceType": "Patient", "name": [{"given": ["Anna", None]}]}, "Patient.name[0].given[1]"),
        (observation(code={}), "Observation.code"),
    ],
)
def test_nulls_and_empties_are_refused(fhir, app, resource, expression):
    issues = refused(fhir, app, resource)
    assert expression in [e for issue in issues for e in issue.get("expression", [])], issues


def test_a_null_that_keeps_a_primitives_place_beside_its_extension_is_fine(fhir):
    extension = {"extension": [{"url": "http://example.org/why", "valueString": "spoken"}]}
    patient = {"resourceType": "Patient", "name": [{"given": ["Anna", None], "_given": [None, extension]}]}
    assert fhir.post("/Patient", patient).status_code == 201


@pytest.mark.parametrize(
    "resource",
    [
        observation(hasMember=[{"reference": "Patient/p1"}]),
        {"resourceType": "Patient", "managingOrganization": {"reference": "Practitioner/dr"}},
        {
            "resourceType": "Patient",
            "managingOrganization": {"reference": "https://other.example/fhir/Location/1"},
        },
        {"resourceType": "Patient", "managingOrganization": {"type": "Location", "display": "a ward"}},
    ],
)
def test_a_reference_to_a_type_the_element_does_not_allow_is_refused(fhir, app, resource):
    issues = refused(fhir, app, resource)
    assert "may point at" in issues[0]["diagnostics"]


def test_references_of_allowed_types_and_any_type_pass(fhir):
    assert (
        fhir.post("/Observation", observation(hasMember=[{"reference": "Observation/o1"}])).status_code == 201
    )
    assert fhir.post("/Observation", observation(focus=[{"reference": "Medication/m1"}])).status_code == 201


def test_a_conditional_reference_outside_a_bundle_is_refused_not_stored_literally(fhir, app):
    issues = refused(
        fhir, app, observation(subject={"reference": "Patient?identifier=https://h.example/mrn|1"})
    )
    assert "transaction" in issues[0]["diagnostics"]


@pytest.mark.parametrize(
    "div",
    [
        f"<div {XHTML}><script>alert(document.cookie)</script>hello</div>",
        f'<div {XHTML}><p onmouseover="steal()">hello</p></div>',
        f'<div {XHTML}><a href="javascript:steal()">hello</a></div>',
        f'<div {XHTML}><img src="https://tracker.example/pixel.gif"/>hello</div>',
        f"<div {XHTML}><iframe>hello</iframe></div>",
        f'<div {XHTML}><p style="background:url(https://tracker.example/x)">hello</p></div>',
        "<div>not in the XHTML namespace</div>",
        f"<div {XHTML}><p>unclosed</div>",
        f"<div {XHTML}>   </div>",
        f'<!DOCTYPE div [<!ENTITY x "y">]><div {XHTML}>&x;</div>',
        # what an HTML parser reads otherwise than an XML one, or a browser normalises
        f"<div {XHTML}>hi<!--><img src=x onerror=alert(1)>--></div>",
        f"<div {XHTML}>hi<?x ><img src=x onerror=alert(1)>?></div>",
        f'<div {XHTML}><a HREF="javascript:alert(1)">a</a></div>',
        f'<div {XHTML}><a href="java&#9;script:alert(1)">a</a></div>',
        f'<div {XHTML}><img src="\\\\evil.example/x.png"/>x</div>',
        f'<div {XHTML}><img SRC="https://evil.example/x.png"/>x</div>',
        f'<div {XHTML}><p style="background:u\\72l(https://evil.example/x)">a</p></div>',
    ],
)
def test_narrative_xhtml_that_breaks_the_rules_is_refused(fhir, app, div):
    issues = refused(fhir, app, {"resourceType": "Patient", "text": {"status": "generated", "div": div}})
    assert issues[0]["expression"] == ["Patient.text.div"]


@pytest.mark.parametrize(
    "resource,expression",
    [
        (
            {
                "resourceType": "Composition",
                "status": "final",
                "type": {"text": "note"},
                "date": "2024-01-01",
                "author": [{"display": "Dr Who"}],
                "title": "Note",
                "section": [
                    {"text": {"status": "generated", "div": f"<div {XHTML}><script>x()</script>y</div>"}}
                ],
            },
            "Composition.section[0].text.div",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Patient",
                            "text": {
                                "status": "generated",
                                "div": f'<div {XHTML}><p onclick="x()">y</p></div>',
                            },
                        }
                    }
                ],
            },
            "Bundle.entry[0].resource.text.div",
        ),
    ],
)
def test_every_narrative_is_checked_not_only_the_resources_own(fhir, app, resource, expression):
    issues = refused(fhir, app, resource)
    assert expression in [e for issue in issues for e in issue.get("expression", [])], issues


@pytest.mark.parametrize(
    "resource",
    [
        observation(valueString="x", component=5),
        {"resourceType": "Patient", "contact": 5},
        {"resourceType": "Patient", "contained": 5},
        {"resourceType": "Patient", "contained": [True]},
        observation(code={"coding": [{"system": {"x": 1}, "code": ["a"]}]}, valueString="x"),
    ],
)
def test_wrong_json_types_are_a_400_not_a_500(fhir, app, resource):
    refused(fhir, app, resource)


def test_a_contained_resource_may_reference_a_sibling(fhir):
    contained = [
        {"resourceType": "Organization", "id": "org1", "name": "Clinic"},
        {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Who"}]},
        {
            "resourceType": "PractitionerRole",
            "id": "role",
            "practitioner": {"reference": "#dr"},
            "organization": {"reference": "#org1"},
        },
    ]
    body = observation(contained=contained, performer=[{"reference": "#role"}])
    assert fhir.post("/Observation", body).status_code == 201


def test_a_required_binding_inside_a_data_types_part_is_checked(fhir, app):
    """Timing.repeat is a TimingRepeat, not a backbone element: its codes are checked too."""
    dosage = [{"timing": {"repeat": {"frequency": 1, "period": 2, "periodUnit": "fortnight"}}}]
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "aspirin"},
        "dosageInstruction": dosage,
    }
    issues = refused(fhir, app, request)
    assert issues[0]["expression"] == ["MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit"]
    request["dosageInstruction"][0]["timing"]["repeat"]["periodUnit"] = "wk"
    assert fhir.post("/MedicationRequest", request).status_code == 201


def test_safe_narrative_is_stored_as_sent(fhir):
    div = f'<div {XHTML}><p>Anna&nbsp;<b>Müller</b>, <a href="https://example.org/x">link</a></p></div>'
    created = fhir.create({"resourceType": "Patient", "text": {"status": "generated", "div": div}})
    assert created["text"]["div"] == div


@pytest.mark.parametrize(
    "resource,invariant",
    [
        (observation(valueString="x", dataAbsentReason={"text": "asked"}), "obs-6"),
        (
            observation(
                code={"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                valueString="x",
                component=[
                    {
                        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                        "valueString": "y",
                    }
                ],
            ),
            "obs-7",
        ),
        ({"resourceType": "Patient", "contact": [{"gender": "female"}]}, "pat-1"),
        (observation(valueQuantity={"value": 61.5, "code": "kg"}), "qty-3"),
        (observation(subject={"reference": "#missing"}), "ref-1"),
    ],
)
def test_invariants_of_the_common_types_are_enforced(fhir, app, resource, invariant):
    issues = refused(fhir, app, resource)
    assert any(invariant in issue["diagnostics"] for issue in issues), issues
    assert any(issue["code"] == "invariant" for issue in issues)


def test_a_contained_reference_that_resolves_passes(fhir):
    contained = [{"resourceType": "Patient", "id": "p", "name": [{"family": "Inside"}]}]
    assert (
        fhir.post("/Observation", observation(contained=contained, subject={"reference": "#p"})).status_code
        == 201
    )


def test_every_problem_is_listed_in_one_outcome(fhir, app):
    issues = refused(
        fhir,
        app,
        {
            "resourceType": "Patient",
            "gender": "robot",
            "birthDate": None,
            "managingOrganization": {"reference": "Practitioner/dr"},
            "contact": [{"gender": "female"}],
            "text": {"status": "generated", "div": f"<div {XHTML}><script>x</script>y</div>"},
        },
    )
    expressions = {e for issue in issues for e in issue.get("expression", [])}
    assert {
        "Patient.gender",
        "Patient.birthDate",
        "Patient.managingOrganization",
        "Patient.contact[0]",
        "Patient.text.div",
    } <= expressions


def test_a_transaction_with_an_invalid_entry_lists_its_problems_and_stores_nothing(fhir, app):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "gender": "female"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Patient", "gender": "robot", "name": []},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    with app.app_context():
        before = count_stored("fhir_resources")
    response = fhir.post("/", bundle)
    assert response.status_code == 400
    diagnostics = [issue["diagnostics"] for issue in response.get_json()["issue"]]
    assert len(diagnostics) >= 2 and all(d.startswith("Bundle entry 1:") for d in diagnostics)
    with app.app_context():
        assert count_stored("fhir_resources") == before


def test_a_required_binding_in_a_nested_repeat_of_a_backbone_is_checked(fhir, app):
    """Questionnaire.item.item is Questionnaire.item again (a contentReference)."""
    nested = {"linkId": "1.1", "type": "no-such-type"}
    questionnaire = {
        "resourceType": "Questionnaire",
        "status": "draft",
        "item": [{"linkId": "1", "type": "group", "item": [nested]}],
    }
    issues = refused(fhir, app, questionnaire)
    assert issues[0]["expression"] == ["Questionnaire.item[0].item[0].type"]


def test_an_extension_inside_a_coding_is_checked_too(fhir, app):
    """Codings and CodeableConcepts hold nothing the rules can fault, so they are passed over,
    unless an extension (which may hold a reference or a quantity) is there."""
    extension = {
        "url": "http://example.org/where",
        "valueQuantity": {"value": 1, "code": "kg"},  # qty-3: a code without a system
    }
    concept = {"coding": [{"system": "http://loinc.org", "code": "29463-7", "extension": [extension]}]}
    issues = refused(fhir, app, observation(code=concept))
    assert any("qty-3" in issue["diagnostics"] for issue in issues), issues
    concept = {
        "text": "weight",
        "extension": [{"url": "http://example.org/who", "valueReference": {"reference": "#nobody"}}],
    }
    issues = refused(fhir, app, observation(code=concept))
    assert any("ref-1" in issue["diagnostics"] for issue in issues), issues


def test_an_extension_on_a_meta_tag_is_checked_too(fhir, app):
    tag = {
        "code": "x",
        "extension": [{"url": "http://example.org/who", "valueReference": {"reference": "#nope"}}],
    }
    issues = refused(fhir, app, observation(meta={"tag": [tag]}))
    assert any("ref-1" in issue["diagnostics"] for issue in issues), issues
