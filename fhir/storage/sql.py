"""The repository on SQLAlchemy Core, for SQLite and PostgreSQL.

Every write stores the version in ``fhir_history``, the current state in
``fhir_resources`` and the search index rows, in the caller's transaction: a failed
request or transaction Bundle rolls all of it back together.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.orm import Session

from app.extensions import db
from app.timeutil import as_utc, utcnow
from fhir.errors import FhirError
from fhir.search.builder import Restriction
from fhir.search.extract import extract
from fhir.search.service import SearchContext, everything, find_ids, search
from fhir.storage import tables
from fhir.storage.repository import HistoryEntry, StoredResource, format_instant


def new_id() -> str:
    return str(uuid.uuid4())


def patient_exists(hospital_id: str, patient_id: str) -> bool:
    """Whether the hospital's store holds a current (not deleted) Patient with this id."""
    return SqlRepository(db.session, hospital_id).exists("Patient", patient_id)


class SqlRepository:
    """One hospital's resources in the SQL store, as one client may see them."""

    def __init__(
        self,
        session: Session,
        hospital_id: str,
        *,
        client_id: str = "",
        base_url: str = "",
        restrict: Restriction | None = None,
    ):
        self.session = session
        self.hospital_id = hospital_id
        self.client_id = client_id
        self.base_url = base_url
        self.restrict = restrict

    # -- search -----------------------------------------------------------------------
    def _search_context(self) -> SearchContext:
        return SearchContext(self.session, self.hospital_id, self.client_id, self.base_url, self.restrict)

    def search(self, resource_type: str, args: list[tuple[str, str]], *, lenient: bool = False) -> str:
        """FHIR R4B search.html: the searchset Bundle as JSON text."""
        return search(self._search_context(), resource_type, args, lenient=lenient)

    def everything(self, patient_id: str, args: list[tuple[str, str]]) -> str:
        """Patient/$everything as a searchset Bundle (JSON text)."""
        return everything(self._search_context(), patient_id, args)

    def find(self, resource_type: str, criteria: str, limit: int = 2) -> list[str]:
        """Ids of the resources matching a conditional ``criteria`` query string."""
        return find_ids(self._search_context(), resource_type, criteria, limit)

    # -- reads ------------------------------------------------------------------------
    def _row(self, resource_type: str, resource_id: str, *, lock: bool = False):
        r = tables.resources.c
        query = select(r.version_id, r.last_updated, r.deleted, r.content, r.created_seq).where(
            r.hospital_id == self.hospital_id, r.resource_type == resource_type, r.id == resource_id
        )
        if lock:
            query = query.with_for_update()
        return self.session.execute(query).first()

    def read(self, resource_type: str, resource_id: str) -> StoredResource:
        """FHIR R4B http.html#read: one primary-key lookup."""
        row = self._row(resource_type, resource_id)
        if row is None:
            raise FhirError.not_found(f"{resource_type}/{resource_id} is not known.")
        stored = StoredResource(
            resource_type, resource_id, row.version_id, as_utc(row.last_updated), row.deleted, row.content
        )
        if stored.deleted:
            raise FhirError.gone(f"{resource_type}/{resource_id} was deleted.", stored.version_id)
        return stored

    def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        h = tables.history.c
        row = self.session.execute(
            select(h.last_updated, h.content, h.method).where(
                h.hospital_id == self.hospital_id,
                h.resource_type == resource_type,
                h.id == resource_id,
                h.version_id == version_id,
            )
        ).first()
        if row is None:
            raise FhirError.not_found(f"{resource_type}/{resource_id} has no version {version_id}.")
        if row.method == "DELETE":
            raise FhirError.gone(
                f"Version {version_id} of {resource_type}/{resource_id} is a deletion.", version_id
            )
        return StoredResource(
            resource_type, resource_id, version_id, as_utc(row.last_updated), False, row.content
        )

    def exists(self, resource_type: str, resource_id: str) -> bool:
        row = self._row(resource_type, resource_id)
        return row is not None and not row.deleted

    # -- writes -----------------------------------------------------------------------
    def _stamp(self, resource: dict, resource_id: str, version_id: int, moment: datetime) -> str:
        resource["id"] = resource_id
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version_id)
        meta["lastUpdated"] = format_instant(moment)
        resource["meta"] = meta
        return orjson.dumps(resource).decode()

    def _record_history(
        self, resource_type: str, resource_id: str, version_id: int, moment: datetime, method: str, content
    ) -> int:
        return self.session.execute(
            insert(tables.history)
            .values(
                hospital_id=self.hospital_id,
                resource_type=resource_type,
                id=resource_id,
                version_id=version_id,
                last_updated=moment,
                method=method,
                content=content,
            )
            .returning(tables.history.c.seq)
        ).scalar_one()

    def create(
        self, resource: dict, *, method: str = "POST", resource_id: str | None = None
    ) -> StoredResource:
        """FHIR R4B http.html#create: a new id, version 1."""
        resource_type = resource["resourceType"]
        resource_id = resource_id or new_id()
        moment = utcnow()
        content = self._stamp(resource, resource_id, 1, moment)
        seq = self._record_history(resource_type, resource_id, 1, moment, method, content)
        self.session.execute(
            insert(tables.resources).values(
                hospital_id=self.hospital_id,
                resource_type=resource_type,
                id=resource_id,
                version_id=1,
                last_updated=moment,
                deleted=False,
                created_seq=seq,
                content=content,
            )
        )
        self._write_index(resource_type, resource_id, resource)
        return StoredResource(resource_type, resource_id, 1, moment, False, content)

    def update(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict,
        *,
        if_match: int | None = None,
        method: str = "PUT",
    ) -> tuple[StoredResource, bool]:
        """FHIR R4B http.html#update; returns the new version and whether it was created."""
        row = self._row(resource_type, resource_id, lock=True)
        if row is None:
            if if_match is not None:
                raise FhirError.precondition_failed(f"{resource_type}/{resource_id} does not exist.")
            return self.create(resource, method=method, resource_id=resource_id), True
        if if_match is not None and if_match != row.version_id:
            raise FhirError.precondition_failed(
                f"{resource_type}/{resource_id} is at version {row.version_id}, not {if_match}."
            )
        version_id = row.version_id + 1
        moment = utcnow()
        content = self._stamp(resource, resource_id, version_id, moment)
        self._record_history(resource_type, resource_id, version_id, moment, method, content)
        self._set_current(resource_type, resource_id, version_id, moment, False, content)
        self._clear_index(resource_type, resource_id)
        self._write_index(resource_type, resource_id, resource)
        return StoredResource(resource_type, resource_id, version_id, moment, False, content), row.deleted

    def delete(self, resource_type: str, resource_id: str) -> StoredResource | None:
        """FHIR R4B http.html#delete: a new, empty version; None when nothing was there."""
        row = self._row(resource_type, resource_id, lock=True)
        if row is None or row.deleted:
            return None
        version_id = row.version_id + 1
        moment = utcnow()
        self._record_history(resource_type, resource_id, version_id, moment, "DELETE", None)
        self._set_current(resource_type, resource_id, version_id, moment, True, None)
        self._clear_index(resource_type, resource_id)
        return StoredResource(resource_type, resource_id, version_id, moment, True, None)

    def _set_current(self, resource_type, resource_id, version_id, moment, deleted, content) -> None:
        r = tables.resources.c
        self.session.execute(
            update(tables.resources)
            .where(r.hospital_id == self.hospital_id, r.resource_type == resource_type, r.id == resource_id)
            .values(version_id=version_id, last_updated=moment, deleted=deleted, content=content)
        )

    # -- index ------------------------------------------------------------------------
    def _owner(self, table, resource_type: str, resource_id: str):
        c = table.c
        return and_(
            c.hospital_id == self.hospital_id, c.resource_type == resource_type, c.resource_id == resource_id
        )

    def _clear_index(self, resource_type: str, resource_id: str) -> None:
        for table in (*tables.INDEX_TABLES.values(), tables.compartments):
            self.session.execute(delete(table).where(self._owner(table, resource_type, resource_id)))

    def _write_index(self, resource_type: str, resource_id: str, resource: dict) -> None:
        values = extract(resource)
        owner = {"hospital_id": self.hospital_id, "resource_type": resource_type, "resource_id": resource_id}
        rows = {
            "string": [{**owner, "param": p, "value": v, "exact": e} for p, v, e in values.strings],
            "token": [
                {**owner, "param": p, "system": s, "code": c, "text": t} for p, s, c, t in values.tokens
            ],
            "reference": [
                {**owner, "param": p, "target_type": tt, "target_id": ti, "reference": ref[:512]}
                for p, tt, ti, ref in values.references
            ],
            "date": [{**owner, "param": p, "low": lo, "high": hi} for p, lo, hi in values.dates],
            "number": [{**owner, "param": p, "low": lo, "high": hi} for p, lo, hi in values.numbers],
            "quantity": [
                {**owner, "param": p, "low": lo, "high": hi, "system": s, "code": c, "unit": u}
                for p, lo, hi, s, c, u in values.quantities
            ],
            "uri": [{**owner, "param": p, "value": v[:512]} for p, v in values.uris],
        }
        for kind, batch in rows.items():
            if batch:
                self.session.execute(insert(tables.INDEX_TABLES[kind]), batch)
        if values.compartment_patients:
            self.session.execute(
                insert(tables.compartments),
                [{**owner, "patient_id": patient} for patient in sorted(values.compartment_patients)],
            )

    # -- history ----------------------------------------------------------------------
    def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | None = None,
        before_seq: int | None = None,
        count: int = 20,
    ) -> list[HistoryEntry]:
        """FHIR R4B http.html#history, newest first."""
        h = tables.history.c
        query = select(h.seq, h.resource_type, h.id, h.version_id, h.last_updated, h.method, h.content).where(
            h.hospital_id == self.hospital_id
        )
        if resource_type:
            query = query.where(h.resource_type == resource_type)
        if resource_id:
            query = query.where(h.id == resource_id)
        if since is not None:
            query = query.where(h.last_updated >= since)
        if before_seq is not None:
            query = query.where(h.seq < before_seq)
        rows = self.session.execute(query.order_by(h.seq.desc()).limit(count))
        return [
            HistoryEntry(
                row.seq,
                StoredResource(
                    row.resource_type,
                    row.id,
                    row.version_id,
                    as_utc(row.last_updated),
                    row.method == "DELETE",
                    row.content,
                ),
                row.method,
            )
            for row in rows
        ]
