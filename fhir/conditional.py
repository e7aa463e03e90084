"""Conditional create, update and delete (FHIR R4B http.html#ccreate, #cond-update, #cdelete).

Criteria are resolved inside the caller's hospital (and view of it). A row in
``fhir_conditional_keys`` per (hospital, type, criteria) turns two parallel conditional
creates, or conditional updates that find no match, into one resource: the second insert of
the key fails and finds the first's result. A conditional delete needs no key: two parallel
ones find the same resource, and the second, waiting for its row lock, finds it deleted.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from fhir.errors import FhirError
from fhir.interactions import parse_etag
from fhir.storage import tables
from fhir.storage.repository import StoredResource
from fhir.storage.sql import SqlRepository, new_id
from fhir.validation import validate_resource


def _criteria_hash(resource_type: str, criteria: str) -> str:
    canonical = urlencode(sorted(parse_qsl(criteria, keep_blank_values=True)))
    return hashlib.sha256(f"{resource_type}?{canonical}".encode()).hexdigest()


def _single_match(repo: SqlRepository, resource_type: str, criteria: str) -> str | None:
    matches = repo.find(resource_type, criteria)
    if len(matches) > 1:
        raise FhirError.precondition_failed(f"The criteria {criteria[:100]!r} match more than one resource.")
    return matches[0] if matches else None


def _create_under_key(repo: SqlRepository, resource_type: str, criteria: str, resource_id: str, create):
    """Run ``create()`` holding the criteria's row in ``fhir_conditional_keys``: ``(its result,
    None)``, or ``(None, the id)`` of the match a parallel request created meanwhile.

    The key's insert waits for a parallel request that inserted the same key to finish, and
    then fails: by then that request's resource is committed and the search finds it. A key
    whose resource no longer matches (deleted or changed since) is stale: it is taken over.
    """
    key = _criteria_hash(resource_type, criteria)
    k = tables.conditional_keys.c
    owner = (k.hospital_id == repo.hospital_id, k.resource_type == resource_type, k.criteria_hash == key)
    for _ in range(2):
        try:
            with repo.savepoint():
                repo.session.execute(
                    insert(tables.conditional_keys).values(
                        hospital_id=repo.hospital_id,
                        resource_type=resource_type,
                        criteria_hash=key,
                        resource_id=resource_id,
                    )
                )
                return create(), None
        except IntegrityError:
            pass  # someone else holds the key: their resource, or a stale key
        existing = _single_match(repo, resource_type, criteria)
        if existing:
            return None, existing
        stale = repo.session.execute(select(k.resource_id).where(*owner)).scalar()
        with repo.savepoint():
            claimed = repo.session.execute(
                update(tables.conditional_keys)
                .where(*owner, k.resource_id == stale)
                .values(resource_id=resource_id)
            ).rowcount
            if claimed:
                return create(), None
    raise FhirError.conflict("Another request is creating the same resource; try again.")


def conditional_create(
    repo: SqlRepository, resource_type: str, body: object, criteria: str
) -> tuple[StoredResource, bool]:
    """``If-None-Exist``: the existing match (created=False) or a new resource."""
    resource = validate_resource(body, resource_type)
    resource.pop("id", None)
    existing = _single_match(repo, resource_type, criteria)
    if existing is None:
        resource_id = new_id()
        created, existing = _create_under_key(
            repo, resource_type, criteria, resource_id, lambda: repo.create(resource, resource_id=resource_id)
        )
        if created is not None:
            return created, True
    return repo.read(resource_type, existing), False


def conditional_update(
    repo: SqlRepository, resource_type: str, criteria: str, body: object, if_match: str | None
) -> tuple[StoredResource, bool]:
    """http.html#cond-update: update the one match, or create (as conditional create does, under
    the criteria's key, so that parallel conditional updates make one resource)."""
    resource = validate_resource(body, resource_type)
    expected = parse_etag(if_match)
    existing = _single_match(repo, resource_type, criteria)
    if existing is None:
        resource_id = resource.get("id") or new_id()
        if repo.exists(resource_type, resource_id):
            raise FhirError.conflict(f"That {resource_type} id exists but does not match the criteria.")
        written, existing = _create_under_key(
            repo,
            resource_type,
            criteria,
            resource_id,
            lambda: repo.update(resource_type, resource_id, resource, if_match=expected),
        )
        if written is not None:
            return written
    if resource.get("id") not in (None, existing):
        raise FhirError.invalid("The resource's id differs from the resource the criteria match.")
    resource["id"] = existing
    return repo.update(resource_type, existing, resource, if_match=expected)


def conditional_delete(repo: SqlRepository, resource_type: str, criteria: str) -> StoredResource | None:
    existing = _single_match(repo, resource_type, criteria)
    return repo.delete(resource_type, existing) if existing else None
