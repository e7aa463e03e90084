"""The repository interface every FHIR interaction is written against.

A repository is already scoped to one hospital when the views get it; the interactions
never see tokens or scopes (access control narrows the repository, not the handlers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


def format_instant(moment: datetime) -> str:
    """FHIR ``instant`` with microseconds, of a UTC datetime (``isoformat`` runs in C: the
    fastest way there; its first 26 characters are the date and time, the offset follows)."""
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


@dataclass(frozen=True)
class StoredResource:
    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    content: str | None  # the exact JSON text served; None for a deletion

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    resource: StoredResource
    method: str  # POST, PUT, PATCH or DELETE


@dataclass(frozen=True)
class HistoryRange:
    """Which versions a history lists (http.html#history): ``_since`` and ``_at``."""

    since: datetime | None = None  # versions written at or after it
    current_from: datetime | None = None  # ``_at``: versions current at some point in
    current_until: datetime | None = None  # [current_from, current_until)


@dataclass(frozen=True)
class HistoryPage:
    """Versions newest first, and where the next page starts: the ``seq`` below which the
    scan goes on, or None when it reached the end. A caller that leaves out versions it may
    not show keeps ``resume_below``, so that its page is short but its paging never stops early."""

    entries: list[HistoryEntry]
    resume_below: int | None


class Repository(Protocol):
    hospital_id: str

    def read(self, resource_type: str, resource_id: str) -> StoredResource: ...

    def read_for_update(self, resource_type: str, resource_id: str) -> StoredResource: ...

    def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource: ...

    def create(self, resource: dict, *, method: str = "POST") -> StoredResource: ...

    def update(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict,
        *,
        if_match: int | None = None,
        method: str = "PUT",
    ) -> tuple[StoredResource, bool]: ...

    def delete(self, resource_type: str, resource_id: str) -> StoredResource | None: ...

    def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        within: HistoryRange = HistoryRange(),
        before_seq: int | None = None,
        count: int = 20,
    ) -> HistoryPage: ...
