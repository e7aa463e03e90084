"""The isolation matrix: every attacker token × every sandbox resource type × every interaction.

Two hospitals hold synthetic records of two patients each (different ids). Attackers are
tokens of all three credential kinds in hospital ``h1``: a hospital key, patient A's
credential (read-only, and one allowed to write), an application granted ``h1``; plus
every kind of ``h2`` token aimed at ``h1``. Each case asserts the exact status (401, 403,
404, or a narrowed 200) and that the response body names no resource the attacker may
not see. The number of cases is printed.
"""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest

from app.extensions import db
from fhir.policy import SHARED_WITH_PATIENTS
from fhir.sandbox import generate
from fhir.search.registry import indexed_params, patient_compartment_params
from fhir.storage.sql import SqlRepository
from oauth.models import OAuthClient
from oauth.validity import bump_epoch
from tests.conftest import BASE_URL, Credential, token_request
from tests.fhir.conftest import FhirClient

ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
        ]
    },
    "code": {"text": "Peanut"},
}


def load_hospital(app, hospital: str, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Two synthetic patients; return {owner: [(type, id)]} with owner a Patient id or 'shared'."""
    resources = list(generate(2, seed=seed))
    patients = [r["id"] for r in resources if r["resourceType"] == "Patient"]
    for patient in patients:
        resources.append(
            {**ALLERGY, "id": f"{patient}-allergy", "patient": {"reference": f"Patient/{patient}"}}
        )
    with app.app_context():
        repo = SqlRepository(db.session, hospital)
        for resource in resources:
            repo.update(resource["resourceType"], resource["id"], dict(resource))
        db.session.commit()
    owners: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for resource in resources:
        text = orjson.dumps(resource).decode()
        owner = next((p for p in patients if f"Patient/{p}" in text or resource["id"] == p), "shared")
        owners[owner].append((resource["resourceType"], resource["id"]))
    return owners


class Matrix:
    def __init__(self, app):
        self.app = app
        self.cases = 0

    def check(self, response, expected, hidden: set[str], what: str) -> None:
        self.cases += 1
        allowed = expected if isinstance(expected, tuple) else (expected,)
        assert response.status_code in allowed, (
            what,
            response.status_code,
            response.get_data(as_text=True)[:300],
        )
        body = response.get_data(as_text=True)
        if body.startswith('{"resourceType":"Bundle"'):
            # Bundle.link only repeats the attacker's own request (or an opaque cursor).
            bundle = orjson.loads(body)
            bundle.pop("link", None)
            for entry in bundle.get("entry", []):
                if isinstance(entry.get("resource"), dict):
                    entry["resource"].pop("link", None)
            body = orjson.dumps(bundle).decode()
        leaked = [rid for rid in hidden if f'"{rid}"' in body or f'/{rid}"' in body]
        assert not leaked, (what, leaked[:5])


@pytest.fixture
def setting(app, client, make):
    make.hospital("h1")
    make.hospital("h2")
    make.hospital("sandbox")
    h1 = load_hospital(app, "h1", seed=1)
    h2 = load_hospital(app, "h2", seed=2)
    patients = sorted(p for p in h1 if p != "shared")
    a, b = patients
    h2_ids = {rid for items in h2.values() for _, rid in items}

    def token(cred: Credential, **form) -> str:
        response = token_request(client, cred, **form)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]

    key = make.api_key("h1", permissions=["system/*.cruds"])
    patient_cred = make.patient_credential("h1", a)
    writer_cred = make.patient_credential("h1", a)
    with app.app_context():
        db.session.get(OAuthClient, writer_cred.key).scope = "patient/*.cruds"
        bump_epoch()  # as every change to a client does: workers cache clients
        db.session.commit()
    application = make.application()
    make.as_role("hospital-admin", "h1").put(
        f"/api/hospitals/h1/apps/{application.key}", json={"permissions": ["system/*.rs"]}
    )
    outsider_key = make.api_key("h2", permissions=["system/*.cruds"])
    outsider_patient = make.patient_credential("h2", sorted(p for p in h2 if p != "shared")[0])
    # For a patient: everything of the other patient is hidden. The hospital's directory
    # (practitioners, organizations: fhir.policy.SHARED_WITH_PATIENTS) is readable but never
    # writable; other shared resources are hidden (tested below).
    b_ids = {rid for _, rid in h1[b]}
    return {
        "h1": h1,
        "h2": h2,
        "a": a,
        "b": b,
        "attackers": {
            # name: (token, hidden ids, may read everything in h1, may write). The hospital
            # key goes last: it legitimately makes h1 resources with h2's ids.
            "patient": (token(patient_cred), b_ids | h2_ids, False, False),
            "patient writer": (token(writer_cred), b_ids | h2_ids, False, True),
            "application": (token(application, resource=f"{BASE_URL}/fhir/h1"), h2_ids, True, False),
            "hospital key": (token(key), h2_ids, True, True),
        },
        "outsiders": {"h2 key": token(outsider_key), "h2 patient": token(outsider_patient)},
    }


def test_isolation_matrix(app, client, setting):
    matrix = Matrix(app)
    h1, h2, a, b = setting["h1"], setting["h2"], setting["a"], setting["b"]
    types = sorted({t for items in h1.values() for t, _ in items})
    assert len(types) >= 10

    for name, (token, hidden_ids, reads_all, writes) in setting["attackers"].items():
        fhir = FhirClient(client, "h1", token)
        hidden = set(hidden_ids)
        patient_context = not reads_all
        for resource_type in types:
            # A victim of this type: another hospital's for everyone, patient B's for the patient.
            victims = [
                rid for t, rid in (h1[b] if patient_context else h2[sorted(h2)[0]]) if t == resource_type
            ]
            victims += [
                rid
                for t, rid in (h1["shared"] if patient_context else h2["shared"])
                if t == resource_type and not (patient_context and t in SHARED_WITH_PATIENTS)
            ]
            if not victims:
                continue
            victim = victims[0]
            label = f"{name} {resource_type}/{victim}"
            matrix.check(fhir.get(f"/{resource_type}/{victim}"), 404, hidden, f"read {label}")
            matrix.check(fhir.get(f"/{resource_type}/{victim}/_history/1"), 404, hidden, f"vread {label}")
            matrix.check(fhir.get(f"/{resource_type}/{victim}/_history"), 404, hidden, f"history {label}")
            matrix.check(fhir.get(f"/{resource_type}?_count=1000"), 200, hidden, f"search {label}")
            matrix.check(fhir.get(f"/{resource_type}?_id={victim}"), 200, hidden, f"search _id {label}")
            matrix.check(fhir.get(f"/{resource_type}?_summary=count"), 200, hidden, f"count {label}")
            matrix.check(
                fhir.get(f"/{resource_type}/_history?_count=1000"), 200, hidden, f"type history {label}"
            )
            references = sorted(c for c, p in indexed_params(resource_type).items() if p.type == "reference")
            for param in references[:6]:
                include = f"/{resource_type}?_count=1000&_include={resource_type}:{param}"
                matrix.check(fhir.get(include), 200, hidden, f"include {param} {label}")
                if "Patient" in indexed_params(resource_type)[param].targets:
                    chained = f"/{resource_type}?{param}:Patient.family:contains=a&_count=1000"
                    matrix.check(fhir.get(chained), (200, 400), hidden, f"chain {param} {label}")
                    deeper = f"/{resource_type}?{param}:Patient.organization.name:contains=a&_count=1000"
                    matrix.check(fhir.get(deeper), (200, 400), hidden, f"two-level chain {param} {label}")
            revinclude = f"/Patient?_count=1000&_revinclude={resource_type}:patient"
            if "patient" in indexed_params(resource_type):
                matrix.check(fhir.get(revinclude), 200, hidden, f"revinclude {label}")
                has = f"/Patient?_has:{resource_type}:patient:_id={victim}&_count=1000"
                matrix.check(fhir.get(has), 200, hidden, f"_has {label}")
                nested = f"/Organization?_has:Patient:organization:_has:{resource_type}:patient:_id={victim}"
                matrix.check(fhir.get(nested), 200, hidden, f"nested _has {label}")
            iterate = (
                f"/{resource_type}?_count=1000&_include=*&_include:iterate=*"
                "&_revinclude:iterate=Observation:patient"
            )
            matrix.check(fhir.get(iterate), 200, hidden, f"iterate {label}")
            system = f"/?_type={resource_type}&_count=1000"
            matrix.check(fhir.get(system), 200, hidden, f"system search {label}")
            matrix.check(fhir.get(f"/?_id={victim}"), 200, hidden, f"system search _id {label}")
            home = "h1" if patient_context else "h2"
            stored = orjson.loads(_stored_json(app, home, resource_type, victim))
            patch = [{"op": "add", "path": "/language", "value": "en"}]
            patched = fhir.patch(f"/{resource_type}/{victim}", patch)
            matrix.check(patched, 404 if writes else 403, hidden, f"patch {label}")
            deleted = fhir.delete(f"/{resource_type}/{victim}")
            matrix.check(deleted, 204 if writes else 403, hidden, f"delete {label}")
            criteria = f"_id={victim}"
            body = {k: v for k, v in stored.items() if k not in ("id", "meta")}
            if not patient_context:
                # What a hospital attacker could write: its own references, not h2's ids.
                body = _retarget(body, f"Patient/{a}")
            created = fhir.post(f"/{resource_type}", body, headers={"If-None-Exist": criteria})
            if not writes:
                matrix.check(created, 403, hidden, f"conditional create {label}")
            elif patient_context:
                # The copy still points at patient B: outside A's compartment.
                matrix.check(created, 403, hidden, f"conditional create {label}")
            else:
                # The criteria never match another hospital's resource: a new one is made here.
                matrix.check(created, 201, hidden, f"conditional create {label}")
            bundle = {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {"request": {"method": "GET", "url": f"{resource_type}/{victim}"}},
                    {"request": {"method": "GET", "url": f"{resource_type}?_id={victim}"}},
                    {"request": {"method": "DELETE", "url": f"{resource_type}/{victim}"}},
                ],
            }
            batch = fhir.post("", bundle)
            matrix.check(batch, 200, hidden, f"batch {label}")
            assert batch.get_json()["entry"][0]["response"]["status"] == "404"
            transaction = {**bundle, "type": "transaction", "entry": bundle["entry"][:1]}
            matrix.check(fhir.post("", transaction), 404, hidden, f"transaction {label}")
            # Last, because for a hospital key it legitimately makes h1's own resource with that id.
            updated = fhir.put(f"/{resource_type}?_id={victim}", {**body, "id": victim})
            if writes and not patient_context:
                matrix.check(updated, 201, set(), f"conditional update {label}")  # its own echo only
                hidden.discard(victim)  # h1 now has its own resource with this id
            else:
                matrix.check(updated, 403, hidden, f"conditional update {label}")
            updated = fhir.put(
                f"/{resource_type}/{victim}", {**body, "id": victim} if not patient_context else stored
            )
            if writes and not patient_context:
                matrix.check(updated, 200, set(), f"update {label}")  # h1's copy, made just above
            else:
                # B's content is outside A's compartment: refused before the id is even looked at.
                matrix.check(updated, 403, hidden, f"update {label}")
            if writes and patient_context:
                # Overwriting B's resource with A's own content: B's resource is simply not there.
                mine = {**_retarget(stored, f"Patient/{a}"), "id": victim}
                in_compartment = (
                    bool(patient_compartment_params(resource_type)) and resource_type != "Patient"
                )
                expected = 404 if in_compartment else 403  # a Practitioner is never a patient's
                matrix.check(
                    fhir.put(f"/{resource_type}/{victim}", mine), expected, hidden, f"overwrite {label}"
                )
            assert _version(app, home, resource_type, victim) == 1, label
        if patient_context:
            # The hospital's directory (practitioners, organizations...): readable, never writable.
            for resource_type, rid in h1["shared"]:
                if resource_type not in SHARED_WITH_PATIENTS:
                    continue
                label = f"{name} shared {resource_type}/{rid}"
                matrix.check(fhir.get(f"/{resource_type}/{rid}"), 200, hidden, f"read {label}")
                # the search lists h1's directory only: h2's ids are in hidden
                matrix.check(fhir.get(f"/{resource_type}?_count=1000"), 200, hidden, f"search {label}")
                patch = [{"op": "add", "path": "/language", "value": "en"}]
                matrix.check(fhir.patch(f"/{resource_type}/{rid}", patch), 403, hidden, f"patch {label}")
                matrix.check(fhir.delete(f"/{resource_type}/{rid}"), 403, hidden, f"delete {label}")
                assert _version(app, "h1", resource_type, rid) == 1, label
        target = b if patient_context else sorted(p for p in h2 if p != "shared")[-1]  # never copied to h1
        matrix.check(fhir.get(f"/Patient/{target}/$everything"), 404, hidden, f"everything {name}")
        own = fhir.get(f"/Patient/{a}/$everything")
        matrix.check(own, 200, hidden, f"own everything {name}")
        for resource_type in types:
            if resource_type != "Patient" and patient_compartment_params(resource_type):
                other = fhir.get(f"/Patient/{target}/{resource_type}")
                matrix.check(other, 404, hidden, f"compartment search {resource_type} of {target} {name}")
                mine = fhir.get(f"/Patient/{a}/{resource_type}?_count=1000")
                matrix.check(mine, 200, hidden, f"own compartment search {resource_type} {name}")
        loinc_values = "/Observation?combo-code-value-quantity=http://loinc.org|$ge-1000000&_count=1000"
        matrix.check(fhir.get(loinc_values), 200, hidden, f"composite {name}")
        components = "/Observation?component-code-value-quantity=http://loinc.org|$ge-1000000&_count=1000"
        matrix.check(fhir.get(components), 200, hidden, f"component composite {name}")
        everywhere = fhir.get("/?_count=50")
        matrix.check(everywhere, 200, hidden, f"system search {name}")
        _check_every_page(matrix, fhir, everywhere, hidden, f"system search pages {name}")
        narrowed = fhir.get(
            f"/Patient/{a}/$everything?_type=Encounter,Practitioner,Organization&start=2000&_count=3"
        )
        matrix.check(narrowed, 200, hidden, f"own everything with parameters {name}")
        _check_every_page(matrix, fhir, narrowed, hidden, f"everything pages {name}")
        for history in ("/_history?_count=40", "/Observation/_history?_count=40&_since=2000-01-01"):
            first = fhir.get(history)
            matrix.check(first, 200, hidden, f"history {history} {name}")
            _check_every_page(matrix, fhir, first, hidden, f"history pages {history} {name}")

    for name, token in setting["outsiders"].items():
        outsider = FhirClient(client, "h1", token)
        for resource_type in types:
            victim = next(rid for t, rid in h1[a] + h1["shared"] if t == resource_type)
            matrix.check(outsider.get(f"/{resource_type}/{victim}"), 401, {victim}, f"{name} read")
            matrix.check(outsider.get(f"/{resource_type}"), 401, {victim}, f"{name} search")
            matrix.check(outsider.delete(f"/{resource_type}/{victim}"), 401, {victim}, f"{name} delete")
        matrix.check(
            outsider.post("", {"resourceType": "Bundle", "type": "batch"}), 401, set(), f"{name} batch"
        )
        matrix.check(outsider.get("/?_type=Patient"), 401, {a}, f"{name} system search")
    print(f"isolation matrix: {matrix.cases} cases")
    assert matrix.cases > 500


def _check_every_page(matrix: Matrix, fhir: FhirClient, response, hidden: set[str], what: str) -> None:
    """Follow the next links of a Bundle: no page shows a hidden resource."""
    bundle = response.get_json()
    for _ in range(100):
        following = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
        if following is None:
            return
        page = fhir.client.get(following, headers=fhir.headers())
        matrix.check(page, 200, hidden, what)
        bundle = page.get_json()
    raise AssertionError(f"{what}: more than 100 pages")


def _stored_json(app, hospital: str, resource_type: str, resource_id: str) -> str:
    with app.app_context():
        return SqlRepository(db.session, hospital).read(resource_type, resource_id).content


def _version(app, hospital: str, resource_type: str, resource_id: str) -> int:
    with app.app_context():
        return SqlRepository(db.session, hospital).read(resource_type, resource_id).version_id


def _new_target(old: object, patient_reference: str) -> object:
    if not isinstance(old, str) or old.startswith("Patient/"):
        return patient_reference
    return f"{old.split('/')[0]}/retargeted"


def _retarget(value, reference: str):
    """Point every reference to a Patient in a resource at ``reference``, and every other one at
    an id of its own type that no hospital holds (an Encounter reference may only name an
    Encounter, and the victim's own ids must not come along)."""
    if isinstance(value, dict):
        return {
            k: (_new_target(v, reference) if k == "reference" else _retarget(v, reference))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_retarget(item, reference) for item in value]
    return value
