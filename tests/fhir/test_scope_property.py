"""Property test: random SMART scope sets and random requests, checked against a small
independent reference model of the scope rules (SMART App Launch 2.x "Scopes").

The model below is written from the specification, not from fhir/policy.py: a v1 scope
``ctx/Type.read`` allows read and search, ``.write`` allows create, update, patch and
delete, ``.*`` all; a v2 scope allows the interactions whose letters it lists (c create,
r read/vread, u update/patch, d delete, s search/history); ``*`` as type means every type;
a token only honours scopes of its own context.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir.errors import FhirError
from fhir.policy import AccessPolicy
from oauth import PATIENT_CREDENTIAL, Principal

TYPES = ["Patient", "Observation", "Condition", "Encounter"]
INTERACTIONS = ["read", "vread", "search", "history", "create", "update", "patch", "delete"]
V1 = {"read": {"read", "vread", "search", "history"}, "write": {"create", "update", "patch", "delete"}}
V1["*"] = V1["read"] | V1["write"]
LETTERS = {
    "c": {"create"},
    "r": {"read", "vread"},
    "u": {"update", "patch"},
    "d": {"delete"},
    "s": {"search", "history"},
}


def model_allows(scopes: list[str], context: str, interaction: str, resource_type: str) -> bool:
    for scope in scopes:
        scope_context, _, rest = scope.partition("/")
        scope_type, _, permission = rest.partition(".")
        if scope_context != context or scope_type not in ("*", resource_type):
            continue
        if permission in V1 and interaction in V1[permission]:
            return True
        if permission not in V1 and any(interaction in LETTERS[letter] for letter in permission):
            return True
    return False


v2_permissions = st.lists(st.sampled_from("cruds"), min_size=1, max_size=5, unique=True).map(
    lambda letters: "".join(sorted(letters, key="cruds".index))
)
scope = st.builds(
    lambda context, resource_type, permission: f"{context}/{resource_type}.{permission}",
    st.sampled_from(["patient", "system", "user"]),
    st.sampled_from([*TYPES, "*"]),
    st.one_of(st.sampled_from(["read", "write", "*"]), v2_permissions),
)


@settings(max_examples=400, deadline=None)
@given(
    scopes=st.lists(scope, max_size=5),
    patient_token=st.booleans(),
    interaction=st.sampled_from(INTERACTIONS),
    resource_type=st.sampled_from(TYPES),
)
def test_policy_agrees_with_the_reference_model(scopes, patient_token, interaction, resource_type):
    principal = Principal(
        client_id="c1",
        kind=PATIENT_CREDENTIAL if patient_token else "hospital_key",
        hospital_id="h",
        patient_id="p1" if patient_token else None,
        scopes=tuple(scopes),
        jti="j",
        expires_at=0,
    )
    expected = model_allows(scopes, "patient" if patient_token else "system", interaction, resource_type)
    try:
        AccessPolicy(principal).require(interaction, resource_type)
        allowed = True
    except FhirError as error:
        assert error.status == 403 and 'error="insufficient_scope"' in error.headers["WWW-Authenticate"]
        allowed = False
    assert allowed == expected, (scopes, patient_token, interaction, resource_type)


system_scope = st.builds(
    lambda resource_type, permission: f"system/{resource_type}.{permission}",
    st.sampled_from([*TYPES, "*"]),
    st.one_of(st.sampled_from(["read", "write", "*"]), v2_permissions),
)
REQUESTS = {
    "read": lambda fhir, t: fhir.get(f"/{t}/x1"),
    "vread": lambda fhir, t: fhir.get(f"/{t}/x1/_history/1"),
    "search": lambda fhir, t: fhir.get(f"/{t}?_id=x1"),
    "history": lambda fhir, t: fhir.get(f"/{t}/_history"),
    "create": lambda fhir, t: fhir.post(f"/{t}", MINIMAL[t]),
    "update": lambda fhir, t: fhir.put(f"/{t}/x1", {**MINIMAL[t], "id": "x1"}),
    "patch": lambda fhir, t: fhir.patch(f"/{t}/x1", [{"op": "add", "path": "/language", "value": "en"}]),
    "delete": lambda fhir, t: fhir.delete(f"/{t}/x1"),
}
MINIMAL = {
    "Patient": {"resourceType": "Patient"},
    "Observation": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
    "Condition": {"resourceType": "Condition", "subject": {"reference": "Patient/x1"}},
    "Encounter": {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}},
}


def test_http_enforcement_agrees_with_the_reference_model(app, client, make):
    """The same property through real requests: 403 exactly when the model says no."""
    from tests.conftest import token_request
    from tests.fhir.conftest import FhirClient

    make.hospital("general")
    admin_key = make.api_key("general", permissions=["system/*.cruds"])
    admin = FhirClient(client, "general", token_request(client, admin_key).get_json()["access_token"])

    @settings(max_examples=60, deadline=None)
    @given(
        scopes=st.lists(system_scope, min_size=1, max_size=4),
        interaction=st.sampled_from(INTERACTIONS),
        resource_type=st.sampled_from(TYPES),
    )
    def check(scopes, interaction, resource_type):
        # Each example starts with {type}/x1 present: an update of a missing or deleted resource
        # is a create (and needs .c), whatever earlier examples did to it.
        assert admin.put(f"/{resource_type}/x1", {**MINIMAL[resource_type], "id": "x1"}).status_code in (
            200,
            201,
        )
        cred = make.api_key("general", permissions=scopes)
        fhir = FhirClient(client, "general", token_request(client, cred).get_json()["access_token"])
        response = REQUESTS[interaction](fhir, resource_type)
        expected = model_allows(scopes, "system", interaction, resource_type)
        assert (response.status_code != 403) == expected, (
            scopes,
            interaction,
            resource_type,
            response.status_code,
        )

    check()
