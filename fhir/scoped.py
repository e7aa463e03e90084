"""A repository narrowed to what one principal may see and do (deny by default).

Views and interactions use it exactly like the SQL repository; every method checks the
SMART scope for its interaction first, and every query carries the principal's
restriction for every type it touches: its hospital always, a patient token's
compartment, the types its scopes cover, and v2 scope search restrictions. Hidden
resources are reported as not found.
"""

from __future__ import annotations

from contextlib import contextmanager

import orjson
from sqlalchemy import ColumnElement, and_, false, or_, select

from fhir.errors import FhirError, Issue
from fhir.model_classes import is_resource_type
from fhir.policy import SHARED_WITH_PATIENTS, AccessPolicy
from fhir.search.builder import SearchBuilder
from fhir.search.extract import extract
from fhir.search.registry import patient_compartment_params, resource_types
from fhir.search.request import parse_search
from fhir.search.system import requested_types
from fhir.storage import tables
from fhir.storage.repository import HistoryPage, StoredResource
from fhir.storage.sql import SqlRepository

_PRIMARY_UNSET = object()


def outside_compartment(resource_type: str) -> FhirError:
    return FhirError(
        403, [Issue("forbidden", f"This {resource_type} would lie outside your patient compartment.")]
    )


def restricted_scope() -> FhirError:
    message = "Scopes with search restrictions allow reading and searching current versions only."
    return FhirError(403, [Issue("forbidden", message)])


class ScopedRepository:
    def __init__(self, inner: SqlRepository, policy: AccessPolicy):
        self.inner = inner
        self.policy = policy
        self.session = inner.session
        self.hospital_id = inner.hospital_id
        self.base_url = inner.base_url
        self.client_id = inner.client_id

    # -- restriction ------------------------------------------------------------------
    def _compartment(self, resource_type: str, id_column) -> ColumnElement | None:
        patient_id = self.policy.patient_id
        if patient_id is None:
            return None
        if resource_type == "Patient":
            return id_column == patient_id
        if resource_type in SHARED_WITH_PATIENTS:
            return None  # readable hospital-wide; _check_writable_scope keeps them from writes
        if not patient_compartment_params(resource_type):
            return false()
        c = tables.compartments.c
        return id_column.in_(
            select(c.resource_id).where(
                c.hospital_id == self.hospital_id,
                c.patient_id == patient_id,
                c.resource_type == resource_type,
            )
        )

    def _restrict(
        self,
        letters: str = "rs",
        primary: str | None = None,
        primary_restrictions=_PRIMARY_UNSET,
        searched: frozenset[str] = frozenset(),
    ):
        """The per-type restriction for a query; ``primary`` uses its interaction's scopes, and
        so do the ``searched`` types of a system search (their ``s`` scopes); a type a chain,
        ``_has`` or include reaches is seen as in a type search (``letters``)."""

        def restrict(resource_type: str, id_column) -> ColumnElement | None:
            if resource_type == primary and primary_restrictions is not _PRIMARY_UNSET:
                visibility = primary_restrictions
            elif resource_type in searched:
                visibility = self.policy.visibility(resource_type, "s")
            else:
                visibility = self.policy.visibility(resource_type, letters)
            if visibility is False:
                return false()
            clauses = []
            compartment = self._compartment(resource_type, id_column)
            if compartment is not None:
                clauses.append(compartment)
            if visibility:
                clauses.append(or_(*(self._matching(resource_type, q, id_column) for q in visibility)))
            return and_(*clauses) if clauses else None

        return restrict

    def search_restriction(self):
        """The per-type restriction of what this principal may search (a bulk export's)."""
        return self._restrict(letters="s")

    def _matching(self, resource_type: str, restriction, id_column) -> ColumnElement:
        """``id_column`` among the resources matching a scope's ``?param=value`` restriction."""
        query = parse_search(resource_type, sorted(restriction), lenient=False)
        builder = SearchBuilder(self.hospital_id, self.base_url)
        r = tables.resources.c
        return id_column.in_(select(r.id).where(*builder.matches(query)).correlate(None))

    def _repo(self, restrict) -> SqlRepository:
        return SqlRepository(
            self.session,
            self.hospital_id,
            client_id=self.client_id,
            base_url=self.base_url,
            restrict=restrict,
        )

    def _visible(self, resource_type: str, resource_id: str, restrictions=_PRIMARY_UNSET) -> bool:
        restrict = self._restrict(primary=resource_type, primary_restrictions=restrictions)
        clause = restrict(resource_type, tables.resources.c.id)
        if clause is None:
            return True
        self.inner.flush()
        r = tables.resources.c
        found = self.session.execute(
            select(r.id).where(
                r.hospital_id == self.hospital_id,
                r.resource_type == resource_type,
                r.id == resource_id,
                clause,
            )
        ).first()
        return found is not None

    def _check_visible(self, resource_type: str, resource_id: str, restrictions=_PRIMARY_UNSET) -> None:
        if not self._visible(resource_type, resource_id, restrictions):
            raise FhirError.not_found(f"No such {resource_type}.")

    def _in_own_compartment(self, content: str | None) -> bool:
        """Whether a version's content belongs to this patient's compartment alone."""
        if content is None:
            return False
        return extract(orjson.loads(content)).compartment_patients == {self.policy.patient_id}

    def _patient_sees_version(self, stored: StoredResource) -> bool:
        """A version a patient token may see: its own compartment's, or a shared type's."""
        return stored.resource_type in SHARED_WITH_PATIENTS or self._in_own_compartment(stored.content)

    def _check_content(self, resource: dict, restrictions=None) -> None:
        """A patient's write must stay inside its own compartment, and nobody else's."""
        patient_id = self.policy.patient_id
        if patient_id is not None and extract(resource).compartment_patients != {patient_id}:
            raise outside_compartment(resource["resourceType"])
        if restrictions:
            raise restricted_scope()

    # -- reads ------------------------------------------------------------------------
    def read(self, resource_type: str, resource_id: str) -> StoredResource:
        restrictions = self.policy.require("read", resource_type)
        if resource_type == "Patient" and restrictions is None and self.policy.patient_id is not None:
            # Only the compartment restricts, and a patient's holds its own Patient alone:
            # the id decides, without a query.
            if resource_id != self.policy.patient_id:
                raise FhirError.not_found(f"No such {resource_type}.")
        else:
            self._check_visible(resource_type, resource_id, restrictions)
        return self.inner.read(resource_type, resource_id)

    def read_for_update(self, resource_type: str, resource_id: str) -> StoredResource:
        """Patch checks its own scope first: a token that may not write learns nothing."""
        self._check_writable_scope("patch", resource_type)
        self._check_visible(resource_type, resource_id)
        return self.inner.read(resource_type, resource_id)

    def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        if self.policy.require("vread", resource_type):
            raise restricted_scope()
        self._check_visible(resource_type, resource_id)
        stored = self.inner.vread(resource_type, resource_id, version_id)
        if self.policy.patient_id is not None and not self._patient_sees_version(stored):
            # The resource is the patient's now, but this version was someone else's.
            raise FhirError.not_found(f"This {resource_type} has no such version.")
        return stored

    def exists(self, resource_type: str, resource_id: str) -> bool:
        return self._visible(resource_type, resource_id) and self.inner.exists(resource_type, resource_id)

    def search(
        self, resource_type: str, args: list[tuple[str, str]], *, lenient: bool = False, compartment=None
    ) -> str:
        restrictions = self.policy.require("search", resource_type)
        if compartment is not None and not self._compartment_owner_there(compartment):
            raise FhirError.not_found("No such Patient.")
        restrict = self._restrict(primary=resource_type, primary_restrictions=restrictions)
        return self._repo(restrict).search(resource_type, args, lenient=lenient, compartment=compartment)

    def search_system(self, args: list[tuple[str, str]], *, lenient: bool = False) -> str:
        """``GET [base]?_type=...``: each type named must be searchable with this token (else
        403, as a type search); without ``_type``, every type it may search. The rows of each type
        searched carry its search restriction, those a chain or ``_has`` reaches the restriction
        they have in a type search; pages of a cursor included (their types are the cursor's)."""
        named = requested_types(args)
        if named is not None:
            for resource_type in named:
                if not is_resource_type(resource_type):
                    raise FhirError.invalid(f"_type names {resource_type[:64]!r}, not a resource type.")
                self.policy.require("search", resource_type)
            types = named
        else:
            types = [t for t in resource_types() if self.policy.visibility(t, "s") is not False]
        return self._repo(self._restrict()).search_system(
            types,
            args,
            lenient=lenient,
            restrict_for=lambda searched: self._restrict(searched=frozenset(searched)),
        )

    def _compartment_owner_there(self, patient_id: str) -> bool:
        """Patient/{id}/{type}: a patient token's own compartment only, of a Patient that exists."""
        own = self.policy.patient_id in (None, patient_id)
        return own and self.inner.exists("Patient", patient_id)

    def find(self, resource_type: str, criteria: str, limit: int = 2) -> list[str]:
        """Conditional criteria see only what the principal may see."""
        return self._repo(self._restrict()).find(resource_type, criteria, limit)

    def everything(self, patient_id: str, args: list[tuple[str, str]], *, lenient: bool = False) -> str:
        restrictions = self.policy.require("read", "Patient")
        if self.policy.patient_id not in (None, patient_id):
            raise FhirError.not_found("No such Patient.")
        restrict = self._restrict(primary="Patient", primary_restrictions=restrictions)
        return self._repo(restrict).everything(patient_id, args, lenient=lenient)

    def history(self, resource_type=None, resource_id=None, **kwargs) -> HistoryPage:
        if resource_type and self.policy.require("history", resource_type):
            raise restricted_scope()
        if resource_id:
            if self.inner.current_version(resource_type, resource_id, lock=False) is None:
                raise FhirError.not_found(f"No such {resource_type}.")
            self._check_visible(resource_type, resource_id)
            page = self.inner.history(resource_type, resource_id, **kwargs)
        else:
            # Whole-hospital history lists only types the scopes let the token search.
            page = self.inner.history(resource_type, None, visible=self._restrict("s"), **kwargs)
        entries = page.entries
        if self.policy.patient_id is not None:
            # Each version on its own merits: a resource may have moved between compartments.
            entries = [e for e in entries if self._patient_sees_version(e.resource)]
        if any(self.policy.visibility(e.resource.resource_type, "s") for e in entries):
            raise restricted_scope()
        return HistoryPage(entries, page.resume_below)

    # -- writes -----------------------------------------------------------------------
    def _check_writable_scope(self, interaction: str, resource_type: str):
        if self.policy.patient_id is not None and resource_type in SHARED_WITH_PATIENTS:
            raise FhirError(
                403, [Issue("forbidden", f"A patient's token may read a {resource_type}, never change it.")]
            )
        restrictions = self.policy.require(interaction, resource_type)
        if restrictions:
            raise restricted_scope()

    def create(
        self, resource: dict, *, method: str = "POST", resource_id: str | None = None
    ) -> StoredResource:
        self._check_writable_scope("create", resource["resourceType"])
        candidate = (
            {**resource, "id": resource_id or "(new)"} if resource["resourceType"] == "Patient" else resource
        )
        self._check_content(candidate)
        return self.inner.create(resource, method=method, resource_id=resource_id)

    def update(self, resource_type, resource_id, resource, *, if_match=None, method="PUT"):
        self._check_writable_scope("patch" if method == "PATCH" else "update", resource_type)
        # The content first: the same answer whether or not a hidden resource has this id.
        self._check_content({**resource, "id": resource_id})
        if self.inner.current_version(resource_type, resource_id) is None:
            self._check_writable_scope("create", resource_type)  # update-as-create creates
        else:
            self._check_visible(resource_type, resource_id)
        return self.inner.update(resource_type, resource_id, resource, if_match=if_match, method=method)

    def delete(self, resource_type: str, resource_id: str) -> StoredResource | None:
        self._check_writable_scope("delete", resource_type)
        if not self._visible(resource_type, resource_id):
            return None  # as for an unknown id: a hidden resource is not confirmed to exist
        return self.inner.delete(resource_type, resource_id)

    # -- plumbing shared with bundles and conditional interactions --------------------
    def prefetch(self, keys) -> None:
        self.inner.prefetch(keys)

    def flush(self) -> None:
        self.inner.flush()

    @contextmanager
    def savepoint(self):
        with self.inner.savepoint():
            yield
