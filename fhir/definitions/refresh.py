"""Extract the search parameters and the patient compartment from HL7's FHIR R4B definitions.

Reads the ``SearchParameter-*.json`` resources and ``CompartmentDefinition-patient.json`` of
the FHIR 4.3.0 (R4B) core package, ``hl7.fhir.r4b.core`` (HL7 publishes it on the npm
registry), and writes only what the registry needs, as compact sorted JSON, beside this file::

    python -m fhir.definitions.refresh                      # runs `npm pack` in a temp dir
    python -m fhir.definitions.refresh hl7.fhir.r4b.core-4.3.0.tgz
    python -m fhir.definitions.refresh /tmp/package         # an unpacked package

Parameters whose base types are not resources of ``fhir.resources.R4B`` lose those bases, and
targets lose such types; a parameter left with no base is dropped (a guard: in 4.3.0 every
base is an R4B resource). To keep the file small, a ``url`` equal to ``CANONICAL_BASE + id`` is left
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

PACKAGE = "hl7.fhir.r4b.core@4.3.0"
SEARCH_PARAMETER_PREFIX = "SearchParameter-"
COMPARTMENT = "CompartmentDefinition-patient.json"
HERE = Path(__file__).resolve().parent
CANONICAL_BASE = "http://hl7.org/fhir/SearchParameter/"
KEPT_FIELDS = ("id", "url", "code", "base", "type", "expression", "target", "multipleOr", "multipleAnd")
KEPT_LISTS = ("comparator", "modifier")
REQUIRED_KINDS = ("resource", "complex-type")  # definitions whose required bindings are read
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


_READ_PREFIXES = (SEARCH_PARAMETER_PREFIX, "StructureDefinition-", "ValueSet-", "CodeSystem-")


def read_package(source: Path) -> dict[str, dict[str, Any]]:
    """The package's resources this refresh reads, by file name (a tarball or a directory)."""
    wanted = lambda name: name.startswith(_READ_PREFIXES) or name == COMPARTMENT  # noqa: E731
    files: dict[str, dict[str, Any]] = {}
    if source.is_dir():
        folder = source / "package" if (source / "package").is_dir() else source
        for path in sorted(folder.glob("*.json")):
            if wanted(path.name):
                files[path.name] = json.loads(path.read_text("utf-8"))
    else:
        with tarfile.open(source, "r:gz") as archive:
            for member in archive:
                name = member.name.removeprefix("package/")
                if "/" not in name and name.endswith(".json") and wanted(name):
                    files[name] = json.load(archive.extractfile(member))
    if COMPARTMENT not in files or not any(name.startswith(SEARCH_PARAMETER_PREFIX) for name in files):
        raise FileNotFoundError(f"{source}: no SearchParameter resources or no {COMPARTMENT}")
    return files


def search_parameters(files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    # The package also holds examples and extension parameters (``experimental``, some with no
    # base): the specification's own parameters are the others. One code has two definitions
    # (``_filter``: Resource-filter and filter); the first by file name is kept.
    kept, defined = [], set()
    for name, resource in sorted(files.items()):
        if not name.startswith(SEARCH_PARAMETER_PREFIX) or resource.get("resourceType") != "SearchParameter":
            continue
        if not resource.get("base") or resource.get("experimental"):
            continue
        keys = {(base, resource.get("code")) for base in resource["base"]}
        if keys & defined:
            continue
        defined |= keys
        kept.append(resource)
    return kept


class _Terminology:
    """Expands the value sets of required bindings from the package's own ValueSets and
    CodeSystems; None for one it cannot enumerate (a filter, an external code system)."""

    def __init__(self, files: dict[str, dict[str, Any]]):
        self.value_sets = {r["url"]: r for r in files.values() if r.get("resourceType") == "ValueSet"}
        self.code_systems = {r["url"]: r for r in files.values() if r.get("resourceType") == "CodeSystem"}

    def _system_codes(self, url: str) -> set[str] | None:
        system = self.code_systems.get(url)
        if system is None or system.get("content") != "complete":
            return None
        codes: set[str] = set()
        pending = list(system.get("concept", []))
        while pending:
            concept = pending.pop()
            codes.add(concept["code"])
            pending.extend(concept.get("concept", []))
        return codes

    def codes(self, url: str, seen: tuple[str, ...] = ()) -> set[str] | None:
        url = url.split("|")[0]
        value_set = self.value_sets.get(url)
        if value_set is None or url in seen:
            return None
        compose = value_set.get("compose", {})
        codes: set[str] = set()
        for include in compose.get("include", []):
            if include.get("filter"):
                return None
            for imported in include.get("valueSet", []):
                more = self.codes(imported, (*seen, url))
                if more is None:
                    return None
                codes |= more
            if "concept" in include:
                codes |= {concept["code"] for concept in include["concept"]}
            elif "system" in include:
                more = self._system_codes(include["system"])
                if more is None:
                    return None
                codes |= more
        for exclude in compose.get("exclude", []):
            if "concept" not in exclude:
                return None
            codes -= {concept["code"] for concept in exclude["concept"]}
        return codes


def concrete_resource_types(files: dict[str, dict[str, Any]]) -> list[str]:
    """Every resource type of the release (some, such as Binary, define no parameter of their own)."""
    return sorted(
        resource["type"]
        for resource in files.values()
        if resource.get("resourceType") == "StructureDefinition"
        and resource.get("kind") == "resource"
        and resource.get("derivation") == "specialization"
        and not resource.get("abstract")
    )


def required_codes(files: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Each ``code`` element with a required binding whose codes can be listed (by its path in
    the base definitions: ``Observation.status``, ``HumanName.use``): its codes."""
    terminology = _Terminology(files)
    found: dict[str, list[str]] = {}
    for resource in files.values():
        if resource.get("resourceType") != "StructureDefinition":
            continue
        if resource.get("derivation") != "specialization" or resource.get("kind") not in REQUIRED_KINDS:
            continue
        for element in resource.get("snapshot", {}).get("element", []):
            binding = element.get("binding") or {}
            types = [t.get("code") for t in element.get("type", [])]
            if binding.get("strength") != "required" or types != ["code"] or not binding.get("valueSet"):
                continue
            codes = terminology.codes(binding["valueSet"])
            if codes:
                found[element["path"]] = sorted(codes)
    return dict(sorted(found.items()))


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


def write(files: dict[str, dict[str, Any]], out: Path) -> tuple[int, int]:
    """Write the slim files into ``out``; return (parameters kept, parameters read)."""
    known: dict[str, bool] = {}
    resources = search_parameters(files)
    compartment = files[COMPARTMENT]
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
    (out / "resource-types.json").write_text(dump(concrete_resource_types(files)) + "\n", "utf-8")
    codes = ",\n".join(f"{dump(path)}:{dump(values)}" for path, values in required_codes(files).items())
    (out / "required-codes.json").write_text(f"{{\n{codes}\n}}\n", "utf-8")
    return len(kept), len(resources)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, help="package .tgz or unpacked directory")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: beside this file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or npm_pack(Path(tmp))
        files = read_package(source)
    kept, total = write(files, args.out)
    print(f"{kept} of {total} search parameters kept in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
