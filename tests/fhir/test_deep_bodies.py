"""Bodies nested hundreds of levels deep are refused with 400 before anything recurses.

JSON parsers accept them (orjson up to 1,024 levels); Bundle reference rewriting, conditional
reference resolution and JSON Patch then walked them recursively into a ``RecursionError`` (500).
"""

from __future__ import annotations

import pytest

from app.api.body import MAX_BODY_DEPTH as API_MAX_DEPTH
from app.json_depth import nested_within
from fhir.http import MAX_BODY_DEPTH
from fhir.importer import Refusal, import_files

DEPTHS = [500, 1000]


def deep(levels: int) -> str:
    """A JSON array nested ``levels`` deep (orjson will not write one past 255)."""
    return "[" * levels + '"x"' + "]" * levels


def splice(template: str, inner: str) -> str:
    return template.replace("@@", inner)


def deep_patient(levels: int) -> str:
    return splice('{"resourceType": "Patient", "name": @@}', deep(levels))


def bundle_of(kind: str, resource: str, full_url: str | None = None) -> str:
    """A one-entry Bundle POSTing ``resource`` (JSON text), written by hand."""
    head = f'"fullUrl": "{full_url}", ' if full_url else ""
    entry = splice("{" + head + '"request": {"method": "POST", "url": "Patient"}, "resource": @@}', resource)
    return splice('{"resourceType": "Bundle", "type": "' + kind + '", "entry": [@@]}', entry)


def _refused(response, limit: int = MAX_BODY_DEPTH) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert f"deeper than {limit} levels" in body["issue"][0]["diagnostics"]


@pytest.mark.parametrize("levels", DEPTHS)
def test_a_transaction_rewriting_references_refuses_a_deep_entry(fhir, levels):
    body = bundle_of("transaction", deep_patient(levels), "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a")
    _refused(fhir.post("/", body))


@pytest.mark.parametrize("levels", DEPTHS)
def test_a_batch_resolving_conditional_references_refuses_a_deep_entry(fhir, levels):
    _refused(fhir.post("/", bundle_of("batch", deep_patient(levels))))


@pytest.mark.parametrize("levels", DEPTHS)
def test_a_json_patch_refuses_a_deep_value(fhir, levels):
    fhir.put("/Patient/p1", {"resourceType": "Patient", "id": "p1"})
    operations = splice('[{"op": "add", "path": "/extension", "value": @@}]', deep(levels))
    _refused(fhir.patch("/Patient/p1", operations))


@pytest.mark.parametrize("levels", DEPTHS)
def test_creates_and_updates_refuse_a_deep_body(fhir, levels):
    _refused(fhir.post("/Patient", deep_patient(levels)))
    headers = fhir.headers({"Content-Type": "application/fhir+json"})
    _refused(fhir.client.put(f"{fhir.base}/Patient?name=x", data=deep_patient(levels), headers=headers))


def test_a_deep_resource_within_the_body_limit_is_refused_by_validation_not_a_500(fhir):
    response = fhir.post("/", bundle_of("transaction", deep_patient(MAX_BODY_DEPTH - 5), "urn:uuid:1"))
    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.get_json()["issue"][0]["diagnostics"]


def test_real_nesting_is_accepted(fhir):
    """A Questionnaire whose items nest 20 deep (40 levels of JSON), far beyond real ones."""
    item: dict = {"linkId": "q20", "type": "string"}
    for n in range(19, 0, -1):
        item = {"linkId": f"q{n}", "type": "group", "item": [item]}
    questionnaire = {"resourceType": "Questionnaire", "status": "draft", "item": [item]}
    assert fhir.post("/Questionnaire", questionnaire).status_code == 201


@pytest.mark.parametrize("levels", DEPTHS)
def test_the_management_api_refuses_a_deep_body(make, levels):
    developer = make.as_role("developer")
    bodies = splice('{"name": "x", "jwks": {"keys": @@}}', deep(levels)), splice('{"name": @@}', deep(levels))
    for body in bodies:
        response = developer.post("/api/apps", data=body, content_type="application/json")
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_request"
        assert f"at most {API_MAX_DEPTH} levels" in response.get_json()["message"]


def test_the_importer_refuses_a_deep_file(app, make, tmp_path):
    make.hospital("general")
    path = tmp_path / "deep.json"
    path.write_text(deep_patient(1000))
    with app.app_context():
        report = import_files("general", [path])
    assert report.resources == 0
    assert report.refused == [Refusal(str(path), f"nested deeper than {MAX_BODY_DEPTH} levels")]


def test_the_depth_counts_each_object_and_array():
    assert nested_within("x", 0) and nested_within([], 1) and not nested_within([], 0)
    assert nested_within({"a": [1, {"b": []}]}, 4) and not nested_within({"a": [1, {"b": []}]}, 3)
