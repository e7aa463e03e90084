"""Access policy at the FHIR API: what a principal's SMART scopes and patient context allow.

SMART App Launch 2.x scopes (v1 ``read``/``write`` and v2 ``cruds``, ``*`` types, v2
search restrictions) are mapped onto FHIR interactions: read and vread need ``r``, search
and history ``s``, create ``c``, update and patch ``u``, delete ``d``. Deny by default:
an interaction no scope covers is refused, a resource outside the patient's compartment
does not exist for a patient token (``SHARED_WITH_PATIENTS`` aside, which it may read).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

from fhir.errors import FhirError, Issue
from fhir.search.registry import patient_compartment_params, resource_types
from oauth import NAMED_ONLY_TYPES, Principal, ScopeError, SmartScope, parse_scopes

LETTER = {
    "read": "r",
    "vread": "r",
    "search": "s",
    "history": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}


# Directory resources a patient's record points to — who treated them, where, with which
# medication — though no patient's compartment holds them. A patient token reads and searches
# them across its hospital (its scopes permitting), as SMART servers let patient apps do; it
# never writes them.
SHARED_WITH_PATIENTS = frozenset(
    {"Practitioner", "PractitionerRole", "Organization", "Location", "Medication"}
)


@cache
def patient_visible_types() -> tuple[str, ...]:
    """The resource types a patient's token may see: their Patient, the types of the patient
    compartment, and ``SHARED_WITH_PATIENTS``; never the audit trail."""
    return tuple(
        name
        for name in resource_types()
        if (name == "Patient" or name in SHARED_WITH_PATIENTS or patient_compartment_params(name))
        and name not in NAMED_ONLY_TYPES
    )


# The audit trail: no ``*`` scope covers it (``oauth.NAMED_ONLY_TYPES``, which the token
# endpoint's narrowing and every request's re-check of a token's scopes apply too).
SECURITY_TYPES = NAMED_ONLY_TYPES


def insufficient_scope(needed: str, interaction: str, resource_type: str) -> FhirError:
    """RFC 6750 §3.1 ``insufficient_scope`` (403) naming the scope that would do."""
    message = f"The token's scopes do not allow {interaction} on {resource_type}; it needs {needed}."
    challenge = f'Bearer realm="fhirgate", error="insufficient_scope", scope="{needed}"'
    return FhirError(403, [Issue("forbidden", message)], {"WWW-Authenticate": challenge})


@dataclass(frozen=True)
class AccessPolicy:
    principal: Principal

    @property
    def context(self) -> str:
        return self.principal.context

    @property
    def patient_id(self) -> str | None:
        return self.principal.patient_id if self.context == "patient" else None

    @cached_property
    def scopes(self) -> tuple[SmartScope, ...]:
        """The token's scopes of its own context (a patient token honours patient/ only)."""
        try:
            parsed = parse_scopes(list(self.principal.scopes))
        except ScopeError:
            return ()
        return tuple(scope for scope in parsed if scope.context == self.context)

    def _covering(self, letter: str, resource_type: str) -> list[SmartScope]:
        if resource_type in SECURITY_TYPES:
            # The audit trail names clients and network addresses: only a system scope that
            # names the type reads or searches it (never a wildcard or a patient token), and
            # nobody writes it through the API.
            return [
                scope
                for scope in self.scopes
                if letter in scope.permissions
                and letter in "rs"
                and scope.resource_type == resource_type
                and scope.context == "system"
            ]
        return [
            scope
            for scope in self.scopes
            if letter in scope.permissions and scope.resource_type in ("*", resource_type)
        ]

    def require(self, interaction: str, resource_type: str) -> list[frozenset] | None:
        """Check the interaction; return the search restrictions that bind it (None: none).

        A scope without ``?...`` allows the interaction outright; scopes with restrictions
        allow it only for resources matching one of them.
        """
        letter = LETTER[interaction]
        covering = self._covering(letter, resource_type)
        if not covering:
            raise insufficient_scope(f"{self.context}/{resource_type}.{letter}", interaction, resource_type)
        if any(not scope.query for scope in covering):
            return None
        return [scope.query for scope in covering]

    def visibility(self, resource_type: str, letters: str = "rs") -> list[frozenset] | None | bool:
        """How resources of a type may be shown (included, chained, listed): ``False`` not
        at all, ``None`` without condition, or only those matching one of the returned v2
        search restrictions. ``letters``: the permissions that count (history: ``s``)."""
        in_reach = (
            resource_type == "Patient"
            or resource_type in SHARED_WITH_PATIENTS
            or patient_compartment_params(resource_type)
        )
        if self.patient_id is not None and not in_reach:
            return False
        covering = [scope for letter in letters for scope in self._covering(letter, resource_type)]
        if not covering:
            return False
        if any(not scope.query for scope in covering):
            return None
        return list(dict.fromkeys(scope.query for scope in covering))
