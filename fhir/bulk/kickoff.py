"""What a ``$export`` kick-off asks for (Bulk Data Access 2.0 §Query Parameters), checked.

Every parameter is applied or refused: an unknown one, a type the token may not search, a
``_typeFilter`` the search code cannot run or ``includeAssociatedData`` (not offered) is a 400
or 403 with an OperationOutcome — or, under ``Prefer: handling=lenient``, left out, and then
left out of the manifest's ``request`` too.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from fhir.errors import FhirError
from fhir.model_classes import is_resource_type
from fhir.policy import AccessPolicy, insufficient_scope
from fhir.search.builder import SearchBuilder
from fhir.search.registry import patient_compartment_params, resource_types
from fhir.search.request import parse_search
from fhir.subsetting import element_names

OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
LEVELS = ("system", "patient", "group")
_TRANSPORT = frozenset({"_format", "_pretty"})
_PARAMETERS = frozenset(
    {"_outputFormat", "_since", "_type", "_typeFilter", "_elements", "patient", "includeAssociatedData"}
)
# FHIR instant: a time to the second at least, and its offset.
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_PATIENT_REFERENCE = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")
# What one kick-off may ask for: each filter is a search the export runs, each patient a
# statement parameter (PostgreSQL takes 65,535 in a statement).
MAX_TYPE_FILTERS = 50
MAX_PATIENTS = 1000
_FILTER_CONTROLS = frozenset(
    {"_sort", "_count", "_include", "_revinclude", "_summary", "_elements", "_total"}
)


@dataclass(frozen=True)
class ExportRequest:
    """What the worker exports; stored with the job as JSON."""

    types: list[str]
    since: str | None = None
    type_filters: dict[str, list[str]] = field(default_factory=dict)  # type -> query strings, OR-ed
    elements: dict[str, list[str]] = field(default_factory=dict)  # type -> element names
    patients: list[str] | None = None  # None: every patient the level takes in

    def as_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> ExportRequest:
        return ExportRequest(**data)


def export_types(policy: AccessPolicy, level: str) -> list[str]:
    """The types an export takes in without ``_type``: at the patient and group levels, the
    Patient and the types of the patient compartment; every type the token may search."""
    return [
        name
        for name in resource_types()
        if (level == "system" or name == "Patient" or patient_compartment_params(name))
        and policy.visibility(name, "s") is not False
    ]


def parameters_of(body: dict) -> list[tuple[str, str]]:
    """The (name, value) pairs of a POST kick-off's Parameters resource."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError.invalid("A POST $export takes a Parameters resource.")
    parameters = body.get("parameter") or []
    if not isinstance(parameters, list):
        raise FhirError.invalid("Parameters.parameter is a list.")
    pairs = []
    for parameter in parameters:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise FhirError.invalid("Each parameter of $export needs a name and a value.")
        values = [v for k, v in parameter.items() if k.startswith("value")]
        if parameter["name"] == "patient" and isinstance(parameter.get("valueReference"), dict):
            values = [parameter["valueReference"].get("reference")]
        if len(values) != 1 or not isinstance(values[0], str):
            raise FhirError.invalid(f"$export's parameter {parameter['name'][:40]!r} needs one text value.")
        pairs.append((parameter["name"], values[0]))
    return pairs


class _Reader:
    def __init__(self, lenient: bool):
        self.lenient = lenient
        self.applied: list[tuple[str, str]] = []

    def refuse(self, message: str) -> None:
        if not self.lenient:
            raise FhirError.invalid(message)


def read_export_request(
    pairs: list[tuple[str, str]], policy: AccessPolicy, level: str, builder: SearchBuilder, *, lenient: bool
) -> tuple[ExportRequest, list[tuple[str, str]]]:
    """The export the pairs ask for, and the pairs it applied (for the manifest's ``request``)."""
    reader = _Reader(lenient)
    allowed = export_types(policy, level)
    requested: list[str] = []
    raw_filters: list[str] = []
    raw_elements: list[str] = []
    since = patients = None
    for name, raw in pairs:
        if name in _TRANSPORT:
            continue
        if name not in _PARAMETERS:
            reader.refuse(
                f"$export takes {', '.join(sorted(_PARAMETERS))}; {name[:60]!r} is not one of them."
            )
            continue
        if name == "_outputFormat":
            if raw not in OUTPUT_FORMATS:
                raise FhirError.not_supported(
                    f"_outputFormat takes {', '.join(sorted(OUTPUT_FORMATS))}; {raw[:60]!r} is not offered."
                )
        elif name == "_since":
            if not _INSTANT.fullmatch(raw.strip()):
                raise FhirError.invalid(f"_since takes a FHIR instant with its offset, got {raw[:60]!r}.")
            try:
                since = datetime.fromisoformat(raw.strip().replace("Z", "+00:00")).isoformat()
            except ValueError:  # shaped like an instant, but no such moment (February 30th)
                raise FhirError.invalid(f"_since: {raw[:60]!r} is not a moment in time.") from None
        elif name == "_type":
            kept = [
                item
                for item in (part.strip() for part in raw.split(","))
                if item and _type_ok(item, allowed, level, policy, reader)
            ]
            if not kept:
                # Every type refused (under lenient handling): never all types instead.
                raise FhirError.invalid(f"_type {raw[:80]!r} names no type this export can take.")
            requested += kept
            reader.applied.append((name, ",".join(kept)))
            continue
        elif name == "_typeFilter":
            raw_filters.append(raw)
            continue  # recorded as applied by _type_filters
        elif name == "_elements":
            raw_elements.append(raw)
            continue  # recorded as applied by _elements
        elif name == "patient":
            if level == "system":
                raise FhirError.invalid("patient narrows a Patient or Group export, not a system one.")
            patients = [*(patients or []), *_patient_ids(raw)]
        elif name == "includeAssociatedData":
            reader.refuse("includeAssociatedData is not offered by this server.")
            continue
        reader.applied.append((name, raw))
    if len(raw_filters) > MAX_TYPE_FILTERS:
        raise FhirError.invalid(f"An export takes at most {MAX_TYPE_FILTERS} _typeFilter values.")
    if patients is not None and len(set(patients)) > MAX_PATIENTS:
        raise FhirError.invalid(f"patient names at most {MAX_PATIENTS} Patients; export a Group for more.")
    types = list(dict.fromkeys(requested)) or allowed
    if not types:
        raise FhirError.simple(403, "forbidden", "The token's scopes let it search no type to export.")
    filters = _type_filters(raw_filters, types, lenient, reader, builder)
    elements = _elements(raw_elements, types, reader)
    if patients is not None and policy.patient_id is not None and set(patients) - {policy.patient_id}:
        raise FhirError.simple(403, "forbidden", "A patient's token exports its own record only.")
    export = ExportRequest(
        types, since, filters, elements, list(dict.fromkeys(patients)) if patients else None
    )
    return export, reader.applied


def _type_ok(item: str, allowed: list[str], level: str, policy: AccessPolicy, reader: _Reader) -> bool:
    if not is_resource_type(item):
        reader.refuse(f"_type: {item[:64]!r} is not a FHIR R4B resource type.")
        return False
    if item in allowed:
        return True
    if level != "system" and item != "Patient" and not patient_compartment_params(item):
        reader.refuse(f"_type: {item} is not in the patient compartment, which a {level} export takes.")
        return False
    raise insufficient_scope(f"{policy.context}/{item}.rs", "export", item)


def _patient_ids(raw: str) -> list[str]:
    match = _PATIENT_REFERENCE.fullmatch(raw.strip())
    if match is None:
        raise FhirError.invalid(f"patient takes references such as Patient/123, got {raw[:60]!r}.")
    return [match.group(1)]


def _type_filters(
    raw_filters: list[str], types: list[str], lenient: bool, reader: _Reader, builder: SearchBuilder
) -> dict:
    """``Type?query`` each, checked by the search code itself — parsed and made into SQL now,
    so that a filter the worker could not run is a 400 here; several for a type are OR-ed."""
    filters: dict[str, list[str]] = {}
    for raw in raw_filters:
        resource_type, _, query = raw.partition("?")
        if resource_type not in types:
            reader.refuse(f"_typeFilter {raw[:80]!r} is for a type this export does not take.")
            continue
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise FhirError.invalid(f"_typeFilter {raw[:80]!r} is not a search query.") from None
        if not pairs or any(name in _FILTER_CONTROLS for name, _ in pairs):
            raise FhirError.invalid(f"_typeFilter {raw[:80]!r} must hold search criteria, and only those.")
        parsed = parse_search(resource_type, pairs, lenient=lenient)
        if not parsed.criteria:
            reader.refuse(f"_typeFilter {raw[:80]!r} holds no criterion this server applies.")
            continue
        builder.criteria(parsed)  # a value the SQL cannot take (``:missing=maybe``) is refused now
        applied = urlencode(parsed.applied)
        filters.setdefault(resource_type, []).append(applied)
        reader.applied.append(("_typeFilter", f"{resource_type}?{applied}"))
    return filters


def _elements(raw_values: list[str], types: list[str], reader: _Reader) -> dict[str, list[str]]:
    """``_elements``: ``Type.name`` for one type, a bare ``name`` for every type that has it."""
    if not raw_values:
        return {}
    items = [item.strip() for raw in raw_values for item in raw.split(",") if item.strip()]
    chosen: dict[str, list[str]] = {}
    kept: list[str] = []
    for item in items:
        owner, dot, name = item.partition(".")
        targets = [owner] if dot and is_resource_type(owner) else types
        name = name if dot and is_resource_type(owner) else item
        found = False
        for resource_type in targets:
            if resource_type not in types:
                continue
            try:
                element_names(resource_type, [name])
            except FhirError:
                continue
            chosen.setdefault(resource_type, []).append(name)
            found = True
        if found:
            kept.append(item)
        else:
            reader.refuse(f"_elements: no exported type has an element {item[:60]!r}.")
    if not kept:
        return {}  # every name refused (lenient handling): no subset
    reader.applied.append(("_elements", ",".join(kept)))
    # A type none of the names belongs to keeps only what every subset keeps (id, meta and
    # its mandatory elements): ``id`` asks for just that.
    return {resource_type: chosen.get(resource_type, ["id"]) for resource_type in types}
