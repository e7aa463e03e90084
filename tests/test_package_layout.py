"""The project's ``fhir`` package and the ``fhir.resources`` distribution live side by side.

The fhir.resources distribution installs a regular package ``fhir/`` in site-packages; the
project's own top-level ``fhir/`` extends its path and must be found first. These tests
prove both import in each supported way of running (pytest, ``python -c`` from the
repository root, the ``fhirgate`` console script, gunicorn), and that the package
boundaries between ``oauth`` and ``fhir`` hold.
"""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
import time
from importlib.metadata import distribution
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
FHIRGATE = Path(sys.executable).parent / "fhirgate"
FHIR_VERSION = "4.3.0"
FHIR_RESOURCES = distribution("fhir.resources")
FHIR_RESOURCES_VERSION = FHIR_RESOURCES.version
# Where the distribution installed fhir.resources (site-packages), and where our fhir/ is.
FHIR_RESOURCES_INIT = Path(FHIR_RESOURCES.locate_file("fhir/resources/__init__.py")).resolve()
PROJECT_FHIR = REPO / "fhir"
SUBPROCESS_TIMEOUT = 60
STARTUP_TIMEOUT = 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env(tmp_path: Path, port: int = 8000) -> dict[str, str]:
    """The inherited environment, minus anything that could put the repository on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env.pop("FHIRGATE_ENV", None)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'fhirgate.db'}"
    env["FHIRGATE_BASE_URL"] = f"http://127.0.0.1:{port}"
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=False
    )
    assert result.returncode == 0, f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def is_project_fhir(path: str | os.PathLike) -> bool:
    return Path(path).resolve().is_relative_to(PROJECT_FHIR)


def is_distribution_fhir_resources(path: str | os.PathLike) -> bool:
    return Path(path).resolve() == FHIR_RESOURCES_INIT


# -- each way of running -------------------------------------------------------------------


def test_pytest_imports_project_fhir_and_fhir_resources():
    """The test suite itself must see our fhir.version and the distribution's fhir.resources."""
    import fhir.resources
    import fhir.resources.R4B.patient
    import fhir.version

    assert is_project_fhir(fhir.version.__file__)
    assert is_distribution_fhir_resources(fhir.resources.__file__)
    assert fhir.version.FHIR_VERSION == FHIR_VERSION
    assert fhir.resources.__version__ == FHIR_RESOURCES_VERSION
    patient = fhir.resources.R4B.patient.Patient(id="p1", active=True)
    assert patient.id == "p1"


def test_python_c_from_repo_root_imports_both(tmp_path):
    """`python -c` from the repository root (how scripts and shells run) must resolve both."""
    code = (
        "import fhir.resources, fhir.resources.R4B.patient, fhir.version\n"
        "print(fhir.version.__file__)\n"
        "print(fhir.resources.__file__)\n"
        "print(fhir.version.FHIR_VERSION, fhir.resources.__version__)\n"
    )
    result = run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(tmp_path))
    version_file, resources_file, versions = result.stdout.strip().splitlines()
    assert is_project_fhir(version_file)
    assert is_distribution_fhir_resources(resources_file)
    assert versions == f"{FHIR_VERSION} {FHIR_RESOURCES_VERSION}"


@pytest.mark.parametrize("where", ["repo_root", "elsewhere"])
def test_console_script_version_imports_both(tmp_path, where):
    """`fhirgate version` imports fhir.version and fhir.resources from any working directory."""
    cwd = REPO if where == "repo_root" else tmp_path
    result = run([str(FHIRGATE), "version"], cwd=cwd, env=subprocess_env(tmp_path))
    assert f"FHIR {FHIR_VERSION} (fhir.resources {FHIR_RESOURCES_VERSION})" in result.stdout


def test_gunicorn_serves_versions_from_both(tmp_path):
    """`gunicorn wsgi:app` from the repository root serves the landing page naming both versions."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    args = [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "30", "wsgi:app"]
    with log.open("wb") as output:
        proc = subprocess.Popen(
            args, cwd=REPO, env=subprocess_env(tmp_path, port), stdout=output, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                assert proc.poll() is None, f"gunicorn exited {proc.returncode}:\n{log.read_text()}"
                try:
                    if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:  # refused, or accepted while the worker still loads
                    pass
                assert time.monotonic() < deadline, f"gunicorn did not start:\n{log.read_text()}"
                time.sleep(0.2)

            response = requests.get(f"{base}/", timeout=10)
            assert response.status_code == 200
            body = response.json()
            assert body["fhir_version"] == FHIR_VERSION
            assert body["fhir_resources_version"] == FHIR_RESOURCES_VERSION
            assert body["token_endpoint"] == f"{base}/oauth/token"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


# -- import boundaries ---------------------------------------------------------------------


def imports(path: Path, package: str) -> list[tuple[int, str, list[str]]]:
    """Every import in ``path`` as ``(line, absolute module, imported names)``.

    ``import a.b`` gives ``("a.b", [])``; ``from a import x, y`` gives ``("a", ["x", "y"])``.
    Relative imports are resolved against the module's own package.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    # Relative imports start from the module's package (``__init__`` is its own package).
    parts = [package, *path.relative_to(REPO / package).with_suffix("").parts][:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = parts[: len(parts) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            found.append((node.lineno, module, [alias.name for alias in node.names]))
    return found


def python_files(package: str) -> list[Path]:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    return files


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def oauth_all() -> set[str]:
    """``oauth.__all__``, read from the source so that no import order is assumed."""
    tree = ast.parse((REPO / "oauth" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    raise AssertionError("oauth/__init__.py defines no __all__")


def test_oauth_does_not_import_fhir_or_web_layers():
    """The authorization server must stay independent of the FHIR server and the web front."""
    forbidden = ("fhir", "app.api", "app.home")
    violations = []
    for path in python_files("oauth"):
        for line, module, names in imports(path, "oauth"):
            targets = [module] + [f"{module}.{name}" for name in names]
            bad = [t for t in targets if any(within(t, f) for f in forbidden)]
            if bad:
                violations.append(f"{path.relative_to(REPO)}:{line} imports {bad[0]}")
    assert not violations, "\n".join(violations)


def test_fhir_uses_only_the_public_oauth_names():
    """The FHIR server may use only what oauth.__all__ exports, never oauth's internals."""
    public = oauth_all()
    violations = []
    for path in python_files("fhir"):
        for line, module, names in imports(path, "fhir"):
            if not within(module, "oauth"):
                continue
            where = f"{path.relative_to(REPO)}:{line}"
            if module != "oauth" or not names:
                violations.append(f"{where} imports {module} (use `from oauth import NAME`)")
                continue
            violations.extend(
                f"{where} imports oauth.{name}, not in oauth.__all__" for name in names if name not in public
            )
    assert not violations, "\n".join(violations)
