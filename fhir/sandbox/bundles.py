"""Transaction Bundles for loading sandbox data (FHIR R4B http.html#transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def transaction_bundles(
    resources: Iterable[dict], per_bundle: int = 500, base: str | None = None
) -> Iterator[dict]:
    """Group resources, in order, into transaction Bundles of ``PUT Type/id`` entries.

    A PUT with the client's id is create-on-update (FHIR R4B http.html#upsert), so loading the
    same data again changes nothing but versions. ``Bundle.entry.fullUrl`` must be absolute
    (bundle.html#fullUrl), so it is set only when ``base`` (the server's FHIR base URL) is
    given; references inside the resources stay relative ``Type/id`` and resolve either way.
    Resources in dependency order yield bundles that reference only themselves or earlier ones.
    """
    if per_bundle < 1:
        raise ValueError("per_bundle must be at least 1")
    prefix = base.rstrip("/") + "/" if base else None
    entries: list[dict] = []
    for resource in resources:
        url = f"{resource['resourceType']}/{resource['id']}"
        entry: dict = {"fullUrl": prefix + url} if prefix else {}
        entry["resource"] = resource
        entry["request"] = {"method": "PUT", "url": url}
        entries.append(entry)
        if len(entries) == per_bundle:
            yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}
            entries = []
    if entries:
        yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}
