"""Where export files live: a directory by default, behind an interface an object store can take.

A file becomes visible only when it is complete (``writer`` writes to a temporary name and
renames it on success), so a download never sees half a file, even of a job whose worker died.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import Flask, current_app

# Job ids and file names are ours (``jobs.new_job_id``, ``runner.file_name``); anything else in
# a path is refused before it reaches the file system.
_SAFE = re.compile(r"[A-Za-z0-9_-]{1,40}(\.ndjson)?")
CHUNK = 64 * 1024


class ExportStorage(Protocol):
    def writer(self, job_id: str, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A binary file to write; it appears under ``name`` only when the block ends cleanly."""

    def chunks(self, job_id: str, name: str) -> Iterator[bytes] | None:
        """The file's bytes in chunks, or None if there is no such file."""

    def delete_job(self, job_id: str) -> None:
        """Remove every file of the job (written or half written); nothing there is fine."""

    def delete_attempt(self, job_id: str, attempt: int) -> None:
        """Remove the files one attempt wrote (``runner.file_name``), whole or half written."""


class DirectoryStorage:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, job_id: str, name: str | None = None) -> Path:
        for part in (job_id, name):
            if part is not None and not _SAFE.fullmatch(part):
                raise ValueError("not an export file name")
        return self.root / job_id if name is None else self.root / job_id / name

    @contextlib.contextmanager
    def writer(self, job_id: str, name: str) -> Iterator[BinaryIO]:
        final = self._path(job_id, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{final.name}.{os.getpid()}.partial")
        try:
            with open(partial, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())  # on disk before it is listed: a crash leaves no short file
            os.replace(partial, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    def chunks(self, job_id: str, name: str) -> Iterator[bytes] | None:
        try:
            handle = open(self._path(job_id, name), "rb")  # noqa: SIM115 - closed by the generator
        except (FileNotFoundError, ValueError):
            return None

        def read() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        return read()

    def delete_job(self, job_id: str) -> None:
        shutil.rmtree(self._path(job_id), ignore_errors=True)

    def delete_attempt(self, job_id: str, attempt: int) -> None:
        folder = self._path(job_id)
        prefix = f"{int(attempt)}-"
        for path in folder.glob("*") if folder.is_dir() else ():
            if path.name.removeprefix(".").startswith(prefix):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def init_export_storage(app: Flask) -> None:
    root = app.config.get("FHIRGATE_EXPORT_DIR") or os.path.join(app.instance_path, "exports")
    app.extensions["fhirgate_export_storage"] = DirectoryStorage(Path(root))


def export_storage() -> ExportStorage:
    return current_app.extensions["fhirgate_export_storage"]
