"""What a patient may grant an application, and what they granted.

A patient grants only ``patient/`` scopes, which reach their own record alone (the token carries
their Patient id, and the FHIR API keeps such a token inside that patient's compartment). Of the
requested scopes, each ``patient/`` resource scope is a choice the patient may untick; the
launch context and refresh scopes come with the approval; everything else (``user/`` and
``system/`` scopes, scopes this server does not know) is named on the consent page as not
granted, and the token response's ``scope`` says what was (RFC 6749 §3.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from oauth.scopes import NAMED_ONLY_TYPES, ScopeError, SmartScope, split_scope

# Come with the approval: the patient context, who signed in (OpenID Connect), and a refresh
# token (offline: until the chosen expiry; online: while the approving portal session lasts too).
CONTEXT_SCOPES = ("launch/patient", "openid", "fhirUser", "offline_access", "online_access")
REFRESH_SCOPES = frozenset({"offline_access", "online_access"})

# How long the app may keep access, as the patient chooses (seconds; None: until revoked).
EXPIRY_CHOICES = {"1h": 3600, "30d": 30 * 86400, "1y": 365 * 86400, "never": None}
DEFAULT_EXPIRY = "1y"


@dataclass(frozen=True)
class Offer:
    context: tuple[str, ...]
    choices: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]


def patient_offer(requested: str) -> Offer:
    """Split the requested scopes into what comes with approval, what the patient chooses, and
    what cannot be granted (with the reason, in words for the patient)."""
    context, choices, refused = [], [], []
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
        elif scope.resource_type in NAMED_ONLY_TYPES:
            refused.append((text, "The access log is not shared with applications."))
        else:
            choices.append(text)
    if "offline_access" in context and "online_access" in context:
        context.remove("online_access")  # offline access includes it
    return Offer(tuple(context), tuple(choices), tuple(refused))


def granted_scope(offer: Offer, ticked: list[str]) -> str:
    """The scope the approval grants: the context scopes and the choices left ticked, in the
    order requested."""
    kept = set(ticked)
    return " ".join([*offer.context, *(scope for scope in offer.choices if scope in kept)])


def refresh_kind(scope: str) -> str | None:
    """``offline_access``, ``online_access`` or None: whether a grant gets refresh tokens."""
    granted = set(split_scope(scope))
    return next((name for name in ("offline_access", "online_access") if name in granted), None)
