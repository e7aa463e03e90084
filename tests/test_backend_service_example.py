"""README's "Connect a backend service" example runs as written against a running server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.servers import ROOT, threaded_server

EXAMPLE = ROOT / "docs" / "examples" / "backend_service.py"


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_example_registers_a_key_and_reads_the_sandbox(app, make, tmp_path: Path):
    make.hospital("sandbox")
    make.patient("sandbox", "sb-example")
    key_file = tmp_path / "backend-key.pem"
    jwks = json.loads(run("keygen", str(key_file)))
    assert "d" not in jwks["keys"][0] and key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    client_id = make.application(jwks=jwks).key
    with threaded_server(app) as url:
        output = run("token", "--key", str(key_file), "--client-id", client_id, "--server", url)
    assert "token: Bearer, expires_in 300 s, scope system/Patient.rs" in output
    assert "read: Patient/sb-example" in output
