"""The sandbox population: the shared set, then one chart per patient index."""

from __future__ import annotations

import random
from collections.abc import Iterator

from fhir.sandbox.chart import Chart
from fhir.sandbox.people import build_directory


def generate(patients: int, seed: int = 0, start_index: int = 0) -> Iterator[dict]:
    """Yield synthetic R4B resources in dependency order, the same bytes for the same arguments.

    First the shared set (Organizations, the hospital first, then Practitioners), then for each
    patient index in ``[start_index, start_index + patients)`` the Patient followed by its
    Encounters, Observations, Conditions, MedicationRequests, AllergyIntolerances,
    Immunizations, Procedures and DiagnosticReports. A patient depends only on ``seed`` and
    its index, so runs over adjacent ranges together equal one run over their union (after
    the shared set, which every run repeats). Ids are ``sb<seed>-…``, so populations of
    different seeds can share a server. Resources are plain JSON-ready dicts without ``meta``;
    nothing is validated here, to keep generation far faster than ingestion.
    """
    if patients < 0 or start_index < 0:
        raise ValueError("patients and start_index must not be negative")
    # Reproducible synthetic data, not secrets; str seeds are hashed the same in every process.
    directory = build_directory(seed, random.Random(f"fhirgate-sandbox/{seed}/shared"))  # noqa: S311
    yield from directory.organizations
    yield from directory.practitioners
    for index in range(start_index, start_index + patients):
        yield from Chart(seed, index, directory).resources()
