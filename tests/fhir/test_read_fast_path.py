"""The FHIR read's fast path (``fhir.read_fast_path``): taken for the common read, answering
exactly as the Flask view does (body, headers, AuditEvent), and leaving every other request,
every error and every narrower access rule to the view."""

from __future__ import annotations

import pytest

from fhir.audit import RequestFacts
from tests.conftest import token_request
from tests.fhir.conftest import counted_view, toggled_get


@pytest.fixture
def view_calls(app, monkeypatch) -> list[None]:
    return counted_view(app, monkeypatch, "fhir.read")


@pytest.fixture
def general(make, client):
    make.hospital("general")
    make.patient("general", "p1", family="Fast")
    make.patient("general", "p2", family="Other")
    key = make.api_key("general", permissions=["system/Patient.rs"])
    token = token_request(client, key).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def get(client, app, monkeypatch):
    return toggled_get(client, app, monkeypatch, "FHIRGATE_READ_FAST_PATH")


def _same_answer(fast, slow):
    assert (fast.status_code, fast.get_data()) == (slow.status_code, slow.get_data())
    assert sorted(fast.headers.items()) == sorted(slow.headers.items())


def _same_facts(fast: RequestFacts, slow: RequestFacts):
    def shown(facts):
        return {k: v for k, v in vars(facts).items() if k != "recorded"}

    assert shown(fast) == shown(slow)


def test_a_read_is_answered_beneath_flask_as_the_view_answers_it(
    postgres_only, general, get, view_calls, recorded
):
    get(True, "/fhir/general/Patient/p1", headers=general)  # the worker learns the hospital
    view_calls.clear()
    recorded.clear()
    fast = get(True, "/fhir/general/Patient/p1", headers=general)
    assert view_calls == []
    slow = get(False, "/fhir/general/Patient/p1", headers=general)
    assert len(view_calls) == 1
    assert fast.status_code == 200 and fast.get_json()["name"] == [{"family": "Fast"}]
    _same_answer(fast, slow)
    assert len(recorded) == 2
    _same_facts(*recorded)


def test_over_https_both_answers_carry_hsts(postgres_only, general, get):
    get(True, "/fhir/general/Patient/p1", headers=general)
    fast = get(True, "/fhir/general/Patient/p1", headers=general, base_url="https://localhost")
    slow = get(False, "/fhir/general/Patient/p1", headers=general, base_url="https://localhost")
    assert "Strict-Transport-Security" in fast.headers
    _same_answer(fast, slow)


@pytest.mark.parametrize(
    "path,extra,status",
    [
        ("/fhir/general/Patient/nobody", {}, 404),
        ("/fhir/general/Observation/p1", {}, 403),  # a scope that does not cover it
        ("/fhir/general/Patient/p1?_format=xml", {}, 406),
        ("/fhir/general/Patient/p1", {"Accept": "application/fhir+xml"}, 406),
        ("/fhir/general/Patient/p1", {"Accept": "application/fhir+json; fhirVersion=5.0"}, 406),
        ("/fhir/general/Patient/p1", {"Accept": "application/fhir+json; fhirVersion=4.3"}, 200),
        ("/fhir/general/Patient/p1", {"If-None-Match": 'W/"1"'}, 304),
        ("/fhir/general/Patient/p1", {"If-None-Match": 'W/"2"'}, 200),
        ("/fhir/general/Patient/p1", {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, 304),
        ("/fhir/general/Patient/p1?_summary=true", {}, 200),
        ("/fhir/general/Nonsense/p1", {}, 404),  # unknown type
        ("/fhir/elsewhere/Patient/p1", {}, 404),  # no such hospital
        ("/fhir/general/Patient/p1", {"Authorization": "Bearer nonsense"}, 401),
        ("/fhir/general/Patient/p1", {"Authorization": ""}, 401),
        ("/fhir/general/Patient/p1/", {}, 404),
    ],
)
def test_everything_else_gets_the_views_answer(postgres_only, general, get, path, extra, status):
    get(True, "/fhir/general/Patient/p1", headers=general)  # the worker learns the hospital
    headers = {**general, **extra}
    fast, slow = get(True, path, headers=headers), get(False, path, headers=headers)
    assert fast.status_code == status
    _same_answer(fast, slow)


def test_a_deleted_resource_gets_the_views_410(postgres_only, make, client, get):
    make.hospital("general")
    make.patient("general", "p1")
    key = make.api_key("general", permissions=["system/Patient.cruds"])
    headers = {"Authorization": f"Bearer {token_request(client, key).get_json()['access_token']}"}
    assert get(True, "/fhir/general/Patient/p1", headers=headers).status_code == 200
    assert client.delete("/fhir/general/Patient/p1", headers=headers).status_code in (200, 204)
    fast, slow = (
        get(True, "/fhir/general/Patient/p1", headers=headers),
        get(False, "/fhir/general/Patient/p1", headers=headers),
    )
    assert fast.status_code == 410
    _same_answer(fast, slow)


def test_a_patient_token_reads_its_own_record_fast_and_nothing_else(
    postgres_only, make, client, get, view_calls
):
    make.hospital("general")
    make.patient("general", "p1")
    make.patient("general", "p2")
    cred = make.patient_credential("general", "p1")
    headers = {"Authorization": f"Bearer {token_request(client, cred).get_json()['access_token']}"}
    get(True, "/fhir/general/Patient/p1", headers=headers)
    view_calls.clear()
    assert get(True, "/fhir/general/Patient/p1", headers=headers).status_code == 200
    assert view_calls == []
    other = get(True, "/fhir/general/Patient/p2", headers=headers)
    assert other.status_code == 404 and len(view_calls) == 1  # the view's compartment check


def test_a_token_for_another_hospital_is_refused_by_the_view(postgres_only, make, client, get, general):
    make.hospital("other")
    make.patient("other", "p1")
    get(True, "/fhir/other/Patient/p1", headers=general)  # the worker learns the hospital
    fast = get(True, "/fhir/other/Patient/p1", headers=general)
    slow = get(False, "/fhir/other/Patient/p1", headers=general)
    assert fast.status_code == 401
    _same_answer(fast, slow)


def test_a_revoked_token_is_refused_at_once(postgres_only, make, client, get):
    make.hospital("general")
    make.patient("general", "p1")
    key = make.api_key("general")
    token = token_request(client, key).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert get(True, "/fhir/general/Patient/p1", headers=headers).status_code == 200
    admin = make.as_role("hospital-admin", "general")
    assert admin.delete(f"/api/hospitals/general/api-keys/{key.key}").status_code == 204
    assert get(True, "/fhir/general/Patient/p1", headers=headers).status_code == 401


def test_a_failure_inside_the_fast_path_leaves_the_read_to_the_view(
    postgres_only, general, get, view_calls, monkeypatch
):
    get(True, "/fhir/general/Patient/p1", headers=general)
    view_calls.clear()

    def broken(*args):
        raise ValueError("an unexpected row")

    monkeypatch.setattr("fhir.read_fast_path.stored_from_text", broken)
    assert get(True, "/fhir/general/Patient/p1", headers=general).status_code == 200
    assert len(view_calls) == 1
