"""What a patient may grant an application, and what they granted.

A patient grants only ``patient/`` scopes, which reach their own record alone (the token carries
their Patient id, and the FHIR API keeps such a token inside that patient's compartment). Of the
requested scopes, each ``patient/`` resource scope is a choice the patient may untick; the
launch context and refresh scopes come with the approval; everything else (``user/`` and
``system/`` scopes, scopes this server does not know) is named on the consent page as not
granted, and the token response's ``scope`` says what was (RFC 6749 §3.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oauth.scopes import NAMED_ONLY_TYPES, ScopeError, SmartScope, covers, parse_scopes, split_scope

# Come with the approval: the patient context, who signed in (OpenID Connect), and a refresh
# token (offline: until the chosen expiry; online: while the approving portal session lasts too).
CONTEXT_SCOPES = ("launch/patient", "openid", "fhirUser", "offline_access", "online_access")
REFRESH_SCOPES = frozenset({"offline_access", "online_access"})

# What a patient may grant: reading and searching their own record (as the key pairs they
# generate always did); writing is not theirs to hand out here.
PATIENT_GRANTABLE = "patient/*.rs"
_PATIENT_READS = parse_scopes(PATIENT_GRANTABLE)

# How long the app may keep access, as the patient chooses (seconds; None: until revoked).
EXPIRY_CHOICES = {"1h": 3600, "30d": 30 * 86400, "1y": 365 * 86400, "never": None}
DEFAULT_EXPIRY = "1y"


# A wildcard (``patient/*.rs``) is offered as these kinds of data one by one, and "everything
# else": the patient may keep any of them back, which no ``*`` scope could express.
FEATURED_TYPES = (
    "Patient",
    "AllergyIntolerance",
    "Condition",
    "Observation",
    "MedicationRequest",
    "Immunization",
    "Procedure",
    "Encounter",
    "DiagnosticReport",
    "DocumentReference",
    "CarePlan",
    "Goal",
    "Coverage",
)


@dataclass(frozen=True)
class Offer:
    context: tuple[str, ...]
    # Each a checkbox: resource scopes, a wildcard's featured types before the wildcard itself,
    # which then stands for everything else.
    choices: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]
    # wildcard → the featured scopes it was offered as
    expanded: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _featured(wildcard: SmartScope, text: str, types: tuple[str, ...]) -> tuple[str, ...]:
    permission = text.partition(".")[2]
    return tuple(f"patient/{name}.{permission}" for name in FEATURED_TYPES if name in types)


def patient_offer(requested: str, types: tuple[str, ...]) -> Offer:
    """Split the requested scopes into what comes with approval, what the patient chooses, and
    what cannot be granted (with the reason, in words for the patient). ``types``: the resource
    types a patient's token can see."""
    context, choices, refused = [], [], []
    expanded: dict[str, tuple[str, ...]] = {}
    for text in dict.fromkeys(split_scope(requested)):
        if text in CONTEXT_SCOPES:
            context.append(text)
            continue
        try:
            scope = SmartScope.parse(text)
        except ScopeError:
            refused.append((text, "This server does not offer this permission."))
            continue
        if scope.context != "patient":
            refused.append((text, "Only the hospital's staff can grant access beyond your own record."))
        elif not covers(_PATIENT_READS, scope):
            refused.append((text, "Apps may read your record here, not change it."))
        elif scope.resource_type in NAMED_ONLY_TYPES:
            refused.append((text, "The access log is not shared with applications."))
        elif scope.resource_type == "*" and not scope.query:
            expanded[text] = _featured(scope, text, types)
            choices.extend([*expanded[text], text])
        else:
            choices.append(text)
    if "offline_access" in context and "online_access" in context:
        context.remove("online_access")  # offline access includes it
    choices = list(dict.fromkeys(choices))  # a type asked for on its own too: one checkbox
    return Offer(tuple(context), tuple(choices), tuple(refused), expanded)


# An EHR launch (a clinician's approval for the launched patient) comes with these.
STAFF_CONTEXT_SCOPES = ("launch", "launch/patient", "openid", "offline_access", "online_access")


def staff_offer(requested: str, allowance: str, *, has_fhir_user: bool = False) -> Offer:
    """The offer of an EHR launch to the clinician who launched it: ``user/`` scopes within what
    their role allows (``allowance``), or else ``patient/`` scopes, which reach the launched
    patient only; the two are not combined in one grant (the FHIR API reads a token in one
    context). ``fhirUser`` needs the account's own FHIR resource (``has_fhir_user``: a
    Practitioner)."""
    allowed = parse_scopes(allowance)
    texts = list(dict.fromkeys(split_scope(requested)))

    def parsed(text: str) -> SmartScope | None:
        try:
            return SmartScope.parse(text)
        except ScopeError:
            return None

    user_level = any(
        (scope := parsed(text)) is not None and scope.context == "user" and covers(allowed, scope)
        for text in texts
    )
    context, choices, refused = [], [], []
    for text in texts:
        scope = parsed(text)
        if text in STAFF_CONTEXT_SCOPES or (text == "fhirUser" and has_fhir_user):
            context.append(text)
        elif text == "fhirUser":
            refused.append((text, "Your account has no FHIR resource (such as a Practitioner) to name."))
        elif scope is None:
            refused.append((text, "This server does not offer this permission."))
        elif scope.context == "system":
            refused.append((text, "Only the hospital's API keys hold system/ access."))
        elif scope.context == "user":
            if covers(allowed, scope):
                choices.append(text)
            else:
                refused.append((text, "Your role does not allow this."))
        elif user_level:
            refused.append((text, "This launch grants user/ access; patient/ scopes are not added to it."))
        elif scope.resource_type in NAMED_ONLY_TYPES:
            refused.append((text, "The access log is not shared with applications."))
        else:
            choices.append(text)
    if "offline_access" in context and "online_access" in context:
        context.remove("online_access")
    return Offer(tuple(context), tuple(choices), tuple(refused))


def granted_scope(offer: Offer, ticked: list[str], types: tuple[str, ...]) -> str:
    """The scope the approval grants: the context scopes and the choices left ticked, in the
    order offered. A wildcard with all its featured types ticked stays a wildcard; with some
    unticked, "everything else" becomes a scope for each type but those; unticked, only the
    featured types left ticked remain."""
    kept = set(ticked) & set(offer.choices)
    withheld = set(offer.choices) - kept
    granted: list[str] = []
    for scope in offer.choices:
        if scope not in kept:
            continue
        featured = offer.expanded.get(scope)
        if featured is None or not (withheld & set(featured)):
            granted.append(scope)
            continue
        permission = scope.partition(".")[2]
        granted.extend(f"patient/{name}.{permission}" for name in types if name not in NAMED_ONLY_TYPES)
    covered = {
        scope for scope in kept if scope in offer.expanded and not (withheld & set(offer.expanded[scope]))
    }
    inside = {featured for wildcard in covered for featured in offer.expanded[wildcard]}
    granted = [scope for scope in dict.fromkeys(granted) if scope not in inside and scope not in withheld]
    return " ".join([*offer.context, *granted])


def refresh_kind(scope: str) -> str | None:
    """``offline_access``, ``online_access`` or None: whether a grant gets refresh tokens."""
    granted = set(split_scope(scope))
    return next((name for name in ("offline_access", "online_access") if name in granted), None)
