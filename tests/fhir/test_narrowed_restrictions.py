"""v2 search restrictions narrowed at the token endpoint, from the attacker's side: a hospital
key granted laboratory Observations only (no Patient scope) tries to make narrowing give it
more, and what narrowing lets through selects no more than the grant at the FHIR API."""

from __future__ import annotations

import pytest

from app.extensions import db
from oauth.keys import keyring
from oauth.models import OAuthClient
from oauth.tokens import mint_access_token
from tests.conftest import BASE_URL, basic_auth, token_request
from tests.fhir.conftest import FhirClient
from tests.fhir.test_attacks import obs

GRANTED = "system/Observation.rs?category=laboratory"


@pytest.fixture
def labs(fhir, make):
    fhir.put("/Patient/p1", {"resourceType": "Patient", "id": "p1", "name": [{"family": "Smith"}]})
    fhir.put("/Patient/p2", {"resourceType": "Patient", "id": "p2", "name": [{"family": "Jones"}]})
    ids = {
        "smith lab": fhir.create(obs("p1", "laboratory"))["id"],
        "jones lab": fhir.create(obs("p2", "laboratory"))["id"],
        "smith vital": fhir.create(obs("p1", "vital-signs"))["id"],
    }
    return ids, make.api_key("general", permissions=[GRANTED])


def test_a_chain_cannot_be_narrowed_into_a_type_the_key_may_not_see(app, client, labs):
    """``subject:Patient.name=Smith`` added to the restriction would tell the key which
    patients are named Smith: refused, and a token that already carries it is dead."""
    ids, key = labs
    own = FhirClient(client, "general", token_request(client, key).get_json()["access_token"])
    assert own.ids("Observation?subject:Patient.name=Smith") == []  # its searches cannot chain there
    for chained in ("subject:Patient.name=Smith", "subject.name=Smith", "subject%3APatient%2Ename=Smith"):
        response = token_request(client, key, scope=f"{GRANTED}&{chained}")
        assert response.status_code == 400, (chained, response.get_json())
        assert response.get_json()["error"] == "invalid_scope"
    with app.app_context():
        row = db.session.get(OAuthClient, key.key)
        scope = f"{GRANTED}&subject:Patient.name=Smith"
        old = mint_access_token(row, "general", scope, 300, BASE_URL, keyring().signing_key()).access_token
    response = FhirClient(client, "general", old).get("/Observation?_count=100")
    assert response.status_code == 401
    assert ids["smith lab"] not in response.get_data(as_text=True)
    introspected = client.post(
        "/oauth/introspect", data={"token": old}, headers=basic_auth(key.key, key.secret)
    )
    assert introspected.get_json() == {"active": False}


@pytest.mark.parametrize(
    "extra",
    [
        "_count=1000",
        "_include=Observation:subject",
        "_revinclude=Provenance:target",
        "_elements=id",
        "_sort=date",
        "_summary=count",
        "_total=none",
        "_has:Provenance:target:agent=x",
        "%5Fcount=1000",
    ],
)
def test_a_restriction_cannot_be_narrowed_with_what_filters_nothing(client, labs, extra):
    _, key = labs
    response = token_request(client, key, scope=f"{GRANTED}&{extra}")
    assert response.status_code == 400, (extra, response.get_json())


@pytest.mark.parametrize(
    "narrowed,expected",
    [
        ("category=laboratory", {"smith lab", "jones lab"}),
        ("category=laborator%79", {"smith lab", "jones lab"}),  # one restriction, two spellings
        ("category=laboratory&category=laboratory,vital-signs", {"smith lab", "jones lab"}),
        ("category=laboratory&subject=Patient/p1", {"smith lab"}),
        ("category=laboratory&subject:missing=false", {"smith lab", "jones lab"}),
        ("category=laboratory&category:not=laboratory", set()),
    ],
)
def test_what_narrowing_lets_through_selects_within_the_grant(client, labs, narrowed, expected):
    ids, key = labs
    response = token_request(client, key, scope=f"system/Observation.rs?{narrowed}")
    assert response.status_code == 200, response.get_json()
    narrowed_client = FhirClient(client, "general", response.get_json()["access_token"])
    found = set(narrowed_client.ids("Observation?_count=100"))
    assert found == {ids[name] for name in expected}
    assert narrowed_client.get(f"/Observation/{ids['smith vital']}").status_code == 404
