"""Conditional read (FHIR R4B http.html#cread, RFC 9110 §13.1) and FHIR version negotiation
(versioning.html#mt-version): a client with a current copy gets 304, and a client asking for
another FHIR version gets 406, never an R4B body it did not ask for."""

from __future__ import annotations

import pytest


@pytest.fixture
def stored(fhir):
    return fhir.create({"resourceType": "Patient", "name": [{"family": "Current"}]})


def read(fhir, stored, **headers):
    return fhir.get(f"/Patient/{stored['id']}", headers=headers)


def test_if_none_match_with_the_current_etag_is_304_without_a_body(fhir, stored):
    etag = read(fhir, stored).headers["ETag"]
    response = read(fhir, stored, **{"If-None-Match": etag})

    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag


@pytest.mark.parametrize("tag", ['"1"', 'W/"1"', '"7", W/"1"', "*"])
def test_if_none_match_compares_weakly_and_takes_lists_and_a_star(fhir, stored, tag):
    assert read(fhir, stored, **{"If-None-Match": tag}).status_code == 304


def test_a_changed_resource_is_served_whole_to_a_conditional_read(fhir, stored):
    old_etag = read(fhir, stored).headers["ETag"]
    fhir.put(f"/Patient/{stored['id']}", {**stored, "gender": "female"})

    by_etag = read(fhir, stored, **{"If-None-Match": old_etag})
    assert by_etag.status_code == 200 and by_etag.get_json()["gender"] == "female"
    assert by_etag.headers["ETag"] == 'W/"2"'
    by_date = read(fhir, stored, **{"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"})
    assert by_date.status_code == 200 and by_date.get_json()["gender"] == "female"


def test_if_modified_since_the_last_update_is_304(fhir, stored):
    modified = read(fhir, stored).headers["Last-Modified"]
    assert read(fhir, stored, **{"If-Modified-Since": modified}).status_code == 304


def test_if_none_match_wins_over_if_modified_since(fhir, stored):
    """RFC 9110 §13.1.3: with If-None-Match present, If-Modified-Since is not looked at."""
    modified = read(fhir, stored).headers["Last-Modified"]
    response = read(fhir, stored, **{"If-None-Match": 'W/"9"', "If-Modified-Since": modified})
    assert response.status_code == 200


def test_a_conditional_vread_is_304_too(fhir, stored):
    response = fhir.get(f"/Patient/{stored['id']}/_history/1", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304


def test_a_bad_if_modified_since_is_ignored(fhir, stored):
    assert read(fhir, stored, **{"If-Modified-Since": "yesterday"}).status_code == 200


@pytest.mark.parametrize(
    "accept",
    [
        "application/fhir+json; fhirVersion=5.0",
        "application/fhir+json;fhirVersion=4.0",
        "application/fhir+xml",
        "application/fhir+json; q=0",
        "text/plain",
    ],
)
def test_an_accept_this_server_cannot_meet_is_406(fhir, stored, accept):
    response = read(fhir, stored, Accept=accept)

    assert response.status_code == 406
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "fhirVersion=4.3" in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "accept",
    [
        "application/fhir+json; fhirVersion=4.3",
        'application/fhir+json; fhirVersion="4.3"',
        "application/fhir+json; fhirVersion=5.0, application/fhir+json; fhirVersion=4.3; q=0.5",
        "application/json",
        "application/json+fhir",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "",
    ],
)
def test_an_accept_this_server_meets_is_served(fhir, stored, accept):
    assert read(fhir, stored, Accept=accept).status_code == 200


def test_a_search_and_the_capability_statement_negotiate_the_same_way(fhir, stored):
    wrong = {"Accept": "application/fhir+json; fhirVersion=5.0"}
    assert fhir.get("/Patient", headers=wrong).status_code == 406
    assert fhir.client.get(f"{fhir.base}/metadata", headers=wrong).status_code == 406


def test_the_capability_statement_declares_conditional_read(fhir):
    statement = fhir.client.get(f"{fhir.base}/metadata").get_json()
    resources = statement["rest"][0]["resource"]
    assert {r.get("conditionalRead") for r in resources} == {"full-support"}
