"""Search by each parameter type, with modifiers and prefixes (FHIR R4B search.html)."""

from __future__ import annotations

import pytest

LOINC = "http://loinc.org"


@pytest.fixture
def data(fhir):
    """Two patients with a few observations each, made through the API."""
    anna = fhir.create(
        {
            "resourceType": "Patient",
            "name": [{"family": "Müller", "given": ["Anna"]}],
            "gender": "female",
            "birthDate": "1980-05-17",
            "identifier": [{"system": "urn:mrn", "value": "MRN-1"}],
            "telecom": [{"system": "email", "value": "anna@example.org"}],
            "address": [{"city": "Zürich", "postalCode": "8001"}],
        }
    )
    bob = fhir.create(
        {
            "resourceType": "Patient",
            "name": [{"family": "Smith_%", "given": ["Bob"]}],
            "gender": "male",
            "birthDate": "1975",
            "identifier": [{"system": "urn:mrn", "value": "MRN-2"}],
        }
    )

    def observation(patient, code, value, unit, when, status="final"):
        return fhir.create(
            {
                "resourceType": "Observation",
                "status": status,
                "code": {
                    "coding": [{"system": LOINC, "code": code, "display": "Vital"}],
                    "text": "Vital sign",
                },
                "subject": {"reference": f"Patient/{patient['id']}"},
                "effectiveDateTime": when,
                "valueQuantity": {
                    "value": value,
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
        )

    obs = {
        "anna_hr": observation(anna, "8867-4", 72, "/min", "2024-01-15T10:00:00Z"),
        "anna_hr2": observation(anna, "8867-4", 95, "/min", "2024-03-01T08:30:00+02:00"),
        "anna_wt": observation(anna, "29463-7", 61.5, "kg", "2023-12-31"),
        "bob_hr": observation(bob, "8867-4", 60, "/min", "2022-06", status="amended"),
    }
    return {"anna": anna, "bob": bob, **obs}


def ids(fhir, query):
    return sorted(fhir.ids(query))


def expect(data, *names):
    return sorted(data[name]["id"] for name in names)


# -- string --------------------------------------------------------------------------
def test_string_is_case_and_accent_insensitive_prefix(fhir, data):
    assert ids(fhir, "Patient?name=muller") == expect(data, "anna")
    assert ids(fhir, "Patient?family=MÜL") == expect(data, "anna")
    assert ids(fhir, "Patient?given=an") == expect(data, "anna")
    assert ids(fhir, "Patient?name=ller") == []


def test_string_exact_and_contains(fhir, data):
    assert ids(fhir, "Patient?family:exact=Müller") == expect(data, "anna")
    assert ids(fhir, "Patient?family:exact=müller") == []
    assert ids(fhir, "Patient?family:contains=ülle") == expect(data, "anna")


def test_like_wildcards_are_literal(fhir, data):
    assert ids(fhir, "Patient?family=smith_%25") == expect(data, "bob")
    assert ids(fhir, "Patient?family=%25") == []
    assert ids(fhir, "Patient?family:contains=_") == expect(data, "bob")
    assert ids(fhir, "Patient?family=s_ith") == []


def test_address_parts_are_strings(fhir, data):
    assert ids(fhir, "Patient?address-city=zurich") == expect(data, "anna")
    assert ids(fhir, "Patient?address-postalcode=8001") == expect(data, "anna")


# -- token ---------------------------------------------------------------------------
def test_token_forms(fhir, data):
    assert ids(fhir, "Patient?gender=female") == expect(data, "anna")
    assert ids(fhir, "Patient?identifier=urn:mrn|MRN-2") == expect(data, "bob")
    assert ids(fhir, "Patient?identifier=MRN-1") == expect(data, "anna")
    assert ids(fhir, "Patient?identifier=urn:other|MRN-1") == []
    assert ids(fhir, "Patient?identifier=urn:mrn|") == expect(data, "anna", "bob")
    assert ids(fhir, "Patient?gender=|female") == expect(data, "anna")
    assert ids(fhir, "Observation?code=http://loinc.org|29463-7") == expect(data, "anna_wt")


def test_token_not_and_text(fhir, data):
    assert ids(fhir, "Patient?gender:not=female") == expect(data, "bob")
    assert ids(fhir, "Observation?code:text=vital") == expect(
        data, "anna_hr", "anna_hr2", "anna_wt", "bob_hr"
    )
    assert ids(fhir, "Observation?status:not=final") == expect(data, "bob_hr")


def test_token_or_and_and(fhir, data):
    assert ids(fhir, "Observation?code=29463-7,8867-4&subject=Patient/" + data["bob"]["id"]) == expect(
        data, "bob_hr"
    )
    assert ids(fhir, "Patient?identifier=MRN-1,MRN-2") == expect(data, "anna", "bob")
    assert ids(fhir, "Patient?identifier=MRN-1&identifier=MRN-2") == []


def test_email_telecom_token(fhir, data):
    assert ids(fhir, "Patient?email=anna@example.org") == expect(data, "anna")


# -- reference -----------------------------------------------------------------------
def test_reference_forms(fhir, data):
    anna = data["anna"]["id"]
    everything = expect(data, "anna_hr", "anna_hr2", "anna_wt")
    assert ids(fhir, f"Observation?subject=Patient/{anna}") == everything
    assert ids(fhir, f"Observation?subject={anna}") == everything
    assert ids(fhir, f"Observation?subject:Patient={anna}") == everything
    assert ids(fhir, f"Observation?patient={fhir.base_url}/Patient/{anna}") == everything
    assert ids(fhir, f"Observation?subject=Group/{anna}") == []


# -- date ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query,expected",
    [
        ("date=2024", ["anna_hr", "anna_hr2"]),
        ("date=2024-01", ["anna_hr"]),
        ("date=2024-01-15", ["anna_hr"]),
        ("date=eq2024-01-15T10:00:00Z", ["anna_hr"]),
        ("date=ne2024", ["anna_wt", "bob_hr"]),
        ("date=gt2024-01-15", ["anna_hr2"]),
        ("date=ge2024-01-15", ["anna_hr", "anna_hr2"]),
        ("date=lt2023-12-31", ["bob_hr"]),
        ("date=le2023-12-31", ["anna_wt", "bob_hr"]),
        ("date=sa2023-12-31", ["anna_hr", "anna_hr2"]),
        ("date=eb2024", ["anna_wt", "bob_hr"]),
        ("date=2022-06-15", []),
        ("date=ge2022-06-15", ["anna_hr", "anna_hr2", "anna_wt", "bob_hr"]),
        ("date=2024-03-01T06:30:00Z", ["anna_hr2"]),
        ("date=ge2024-01-01&date=lt2024-02-01", ["anna_hr"]),
        ("date=2022,2023", ["anna_wt", "bob_hr"]),
    ],
)
def test_date_prefixes_partial_dates_and_timezones(fhir, data, query, expected):
    assert ids(fhir, f"Observation?{query}") == expect(data, *expected)


def test_date_ap_is_approximate(fhir, data):
    assert data["anna_hr"]["id"] in ids(fhir, "Observation?date=ap2024-01-16")


def test_birthdate_partial_value(fhir, data):
    assert ids(fhir, "Patient?birthdate=1975-03-01") == []
    assert ids(fhir, "Patient?birthdate=ge1975-03-01") == expect(data, "anna", "bob")
    assert ids(fhir, "Patient?birthdate=1975") == expect(data, "bob")


# -- quantity ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query,expected",
    [
        ("value-quantity=72", ["anna_hr"]),
        ("value-quantity=72|http://unitsofmeasure.org|/min", ["anna_hr"]),
        ("value-quantity=72||/min", ["anna_hr"]),
        ("value-quantity=72||kg", []),
        ("value-quantity=gt70", ["anna_hr", "anna_hr2"]),
        ("value-quantity=lt61.5", ["bob_hr"]),
        ("value-quantity=le61.5", ["anna_wt", "bob_hr"]),
        ("value-quantity=ge95||/min", ["anna_hr2"]),
        ("value-quantity=ne72||/min", ["anna_hr2", "bob_hr"]),
        ("value-quantity=61.5", ["anna_wt"]),
        ("value-quantity=6.15e1", ["anna_wt"]),
        ("value-quantity=ap66", ["anna_wt", "bob_hr", "anna_hr"]),
    ],
)
def test_quantity_prefixes_and_units(fhir, data, query, expected):
    assert ids(fhir, f"Observation?{query}") == expect(data, *expected)


# -- missing -------------------------------------------------------------------------
def test_missing_modifier(fhir, data):
    assert ids(fhir, "Patient?telecom:missing=true") == expect(data, "bob")
    assert ids(fhir, "Patient?telecom:missing=false") == expect(data, "anna")


# -- _id, _lastUpdated ---------------------------------------------------------------
def test_id_and_last_updated(fhir, data):
    assert ids(fhir, f"Patient?_id={data['anna']['id']},{data['bob']['id']}") == expect(data, "anna", "bob")
    assert ids(fhir, "Patient?_lastUpdated=gt2000-01-01") == expect(data, "anna", "bob")
    assert ids(fhir, "Patient?_lastUpdated=lt2000-01-01") == []


# -- errors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        "Patient?nonsense=1",
        "Patient?name:bogus=x",
        "Observation?date=yesterday",
        "Observation?value-quantity=lots",
        "Patient?_count=many",
        "Patient?_sort=nonsense",
        "Patient?telecom:missing=maybe",
        "Observation?subject.nonsense=x",
        "Observation?subject:Patient.name.family=x",
        "Patient?_include=Observation:subject",
        "Patient?_summary=maybe",
    ],
)
def test_bad_searches_are_400(fhir, data, query):
    response = fhir.get(f"/{query}")
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_lenient_handling_ignores_unknown_parameters(fhir, data):
    response = fhir.get("/Patient?nonsense=1&gender=male", headers={"Prefer": "handling=lenient"})
    assert response.status_code == 200
    bundle = response.get_json()
    matches = [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert matches == [data["bob"]["id"]]
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "nonsense" in outcome[0]["resource"]["issue"][0]["diagnostics"]


def test_the_lenient_self_link_lists_only_the_parameters_applied(fhir, data):
    """search.html#lenient: the self link says what the server did, not what was asked."""
    lenient = {"Prefer": "handling=lenient"}
    query = "/Observation?nonsense=1&code=8867-4&_sort=nosuchkey,-date&_total=maybe&_count=1"
    bundle = fhir.get(query, headers=lenient).get_json()

    self_url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert self_url.endswith("/Observation?code=8867-4&_sort=-date&_count=1")
    # the next page carries only what was applied, and needs no Prefer header to be followed
    seen = [bundle["entry"][0]["resource"]["id"]]
    while nxt := next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None):
        response = fhir.client.get(nxt, headers=fhir.headers())
        assert response.status_code == 200, response.get_json()
        bundle = response.get_json()
        seen += [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
    expected = [data["anna_hr2"]["id"], data["anna_hr"]["id"], data["bob_hr"]["id"]]
    assert seen == expected
