"""README's "Bulk export" example runs as written against ``make run``'s server (granian and its
export worker): it kicks off, polls and downloads, and the files hold what the hospital holds."""

from __future__ import annotations

import subprocess
import sys

from tests.bulk.conftest import load_patients
from tests.servers import ROOT, make_run_server

EXAMPLE = ROOT / "docs" / "examples" / "bulk_export.py"


def test_the_bulk_export_example_downloads_every_file(app, make, tmp_path):
    make.hospital("general")
    load_patients(app, "general", 3)
    key = make.api_key("general", permissions=["system/*.rs"])
    with make_run_server(app, tmp_path / "server.log") as server:
        command = [sys.executable, str(EXAMPLE), "--key", key.key, "--secret", key.secret]
        command += ["--server", server.url, "--hospital", "general", "--level", "patient"]
        command += ["--type", "Patient,Condition", "--out", str(tmp_path / "export")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "kicked off:" in done.stdout and "Patient: 3 resources" in done.stdout
    files = sorted(path.name for path in (tmp_path / "export").iterdir())
    assert files == ["1-Condition-1.ndjson", "1-Patient-1.ndjson"]
    assert len((tmp_path / "export" / "1-Patient-1.ndjson").read_text().splitlines()) == 3
    assert key.secret not in done.stdout + done.stderr
