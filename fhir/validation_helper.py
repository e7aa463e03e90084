"""Model validation of a large transaction in a helper process, beside the worker.

Checking a resource against the R4B models (pydantic, with fhir.resources' Python validators
at every element) is pure CPU and about half of what the worker spends on a large transaction
Bundle; a sync server process uses one core. So each server process keeps one helper process
that validates the Bundle's resources ahead of the worker, which meanwhile indexes and buffers
the entries before them: the two run on two cores.

Correctness never depends on the helper. A verdict applies only to the very object that was
sent (identity, not equality), the cheap checks still run in the worker, and whenever the helper
is starting, busy with another thread's request, slow or gone, the worker validates inline.
"""

from __future__ import annotations

import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import orjson

from fhir import exact_json
from fhir.errors import FhirError, Issue
from fhir.model_classes import model_class
from fhir.validation import Verdict, checked_model_class, model_error, verdicts_from

log = logging.getLogger(__name__)

MIN_RESOURCES = 32  # below this, sending costs more than it saves
FIRST_CHUNK = 4  # a small first frame: the helper starts while the worker sends the rest
CHUNK = 16
WINDOW = 96  # resources sent ahead of the one the worker is at; bounds work lost to a failed Bundle
WAIT_S = 30.0  # a helper silent this long is killed; the worker validates inline
RESTART_AFTER_S = 60.0
_HEADER = struct.Struct(">I")
_ROOT = str(Path(__file__).resolve().parent.parent)
_F_SETPIPE_SZ = 1031  # Linux fcntl: a 1 MiB pipe keeps a window's frames from blocking the worker


class _HelperGone(Exception):
    pass


class ValidationHelper:
    """The helper process of this server process; one request uses it at a time."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._owner_pid = 0
        self._ready = False
        self._failed_at = 0.0
        self._inbox = bytearray()
        self._outbox = bytearray()
        self._results: dict[int, object] = {}
        self._next_seq = 0
        self._floor = 0
        self.verdicts_used = 0  # how many model checks the helper did for this process

    # -- the batch API used by a transaction ------------------------------------------
    @contextmanager
    def validating(self, resources: list[dict]) -> Iterator[None]:
        """Within the block, ``validate_resource`` uses the helper's verdicts on ``resources``."""
        batch = self._begin(resources) if self.enabled and len(resources) >= MIN_RESOURCES else None
        if batch is None:
            yield
            return
        try:
            with verdicts_from(batch):
                yield
        finally:
            self._lock.release()

    def _begin(self, resources: list[dict]) -> _Batch | None:
        if not self._lock.acquire(blocking=False):
            return None  # another thread of this process holds the helper
        try:
            if not self._usable():
                self._lock.release()
                return None
            return _Batch(self, resources)
        except BaseException:
            self._lock.release()
            raise

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Start the helper if needed and wait until it has loaded the models (tests, warm-up)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._failed_at = 0.0
            while not self._usable():
                if time.monotonic() > deadline:
                    return False
                if self._process is not None:
                    with suppress(_HelperGone):
                        self._pump(0.05)
        return True

    # -- process lifecycle --------------------------------------------------------------
    def _usable(self) -> bool:
        if self._owner_pid != os.getpid():  # a fork inherited our state: start afresh
            self._process, self._ready, self._owner_pid = None, False, os.getpid()
        if self._process is None:
            if self._failed_at and time.monotonic() - self._failed_at < RESTART_AFTER_S:
                return False
            self._start()
            return False
        try:
            if self._process.poll() is not None:
                raise self._gone("exited")
            if not self._ready:
                self._pump(0)
        except _HelperGone:
            return False
        return self._ready

    def _start(self) -> None:
        command = [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {_ROOT!r}); import app; "
            "from fhir.validation_helper import serve; serve()",
        ]
        try:
            self._process = subprocess.Popen(  # noqa: S603 — our own interpreter and code
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=_helper_environment(),
            )
        except OSError as error:
            self._failed_at = time.monotonic()
            log.warning("validation helper could not start (%s); validating inline", type(error).__name__)
            return
        for pipe in (self._process.stdin, self._process.stdout):
            try:
                import fcntl

                fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, 1 << 20)
            except (ImportError, OSError):
                pass
        os.set_blocking(self._process.stdin.fileno(), False)
        self._ready = False
        self._inbox.clear()
        self._outbox.clear()
        self._results.clear()

    def _gone(self, why: str) -> _HelperGone:
        """Stop a helper that misbehaved; the caller raises what this returns."""
        process, self._process, self._ready = self._process, None, False
        self._failed_at = time.monotonic()
        if process is not None:
            process.kill()
            process.wait()
        log.warning("validation helper %s; validating inline", why)
        return _HelperGone(why)

    def close(self) -> None:
        """Stop the helper (it also exits by itself when this process goes away)."""
        process, self._process, self._ready = self._process, None, False
        if process is not None and self._owner_pid == os.getpid():
            process.kill()
            process.wait()

    # -- frames -------------------------------------------------------------------------
    def _send(self, items: list) -> None:
        payload = exact_json.dumps(items)  # the helper validates each decimal as written
        self._outbox += _HEADER.pack(len(payload)) + payload
        self._pump(0)

    def _pump(self, timeout: float) -> None:
        """Write what the pipe takes; read whatever has arrived, waiting up to ``timeout``."""
        process = self._process
        if process is None:
            raise _HelperGone("stopped")
        writers = [process.stdin] if self._outbox else []
        readable, writable, _ = select.select([process.stdout], writers, [], timeout)
        if writable:
            try:
                written = os.write(process.stdin.fileno(), self._outbox)
            except BlockingIOError:
                written = 0
            except OSError:
                raise self._gone("closed its input") from None
            del self._outbox[:written]
        if readable:
            chunk = os.read(process.stdout.fileno(), 1 << 20)
            if not chunk:
                raise self._gone("exited")
            self._inbox += chunk
            self._unpack()

    def _unpack(self) -> None:
        inbox = self._inbox
        while len(inbox) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(inbox)
            if len(inbox) < _HEADER.size + size:
                return
            message = orjson.loads(bytes(inbox[_HEADER.size : _HEADER.size + size]))
            del inbox[: _HEADER.size + size]
            if message == "ready":
                self._ready = True
            else:
                for seq, outcome in message:
                    if seq >= self._floor:  # older ones belong to a Bundle that already failed
                        self._results[seq] = outcome

    def _await(self, seq: int) -> object:
        deadline = time.monotonic() + WAIT_S
        while seq not in self._results:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._gone("timed out")
            self._pump(min(remaining, 1.0))
        return self._results.pop(seq)


def _helper_environment() -> dict[str, str]:
    """Only what Python needs: the helper never sees SECRET_KEY, the KEK or database URLs."""
    keep = ("PATH", "LANG", "LC_", "PYTHON", "VIRTUAL_ENV", "TMPDIR")
    return {key: value for key, value in os.environ.items() if key.startswith(keep)}


class _Batch:
    """One transaction's resources: sent in a window ahead of the worker, verdicts by identity."""

    def __init__(self, helper: ValidationHelper, resources: list[dict]):
        self.helper = helper
        self.items: list[tuple[int, str, dict]] = []
        self.by_identity: dict[int, tuple[int, dict]] = {}
        first = helper._next_seq
        for resource in resources:
            try:
                checked_model_class(resource)
            except FhirError:
                continue  # the worker reports it inline, in its turn
            seq = first + len(self.items)
            self.items.append((seq, resource["resourceType"], resource))
            self.by_identity[id(resource)] = (seq, resource)
        helper._next_seq = first + len(self.items)
        helper._floor = first
        helper._results.clear()
        self.sent = 0
        self.broken = False
        self._send_up_to(FIRST_CHUNK)

    def _send_up_to(self, count: int) -> None:
        count = min(count, len(self.items))
        while self.sent < count:
            size = FIRST_CHUNK if self.sent == 0 else CHUNK
            chunk = self.items[self.sent : self.sent + size]
            self.helper._send([list(item) for item in chunk])
            self.sent += len(chunk)

    def verdict(self, resource: dict) -> Verdict | None:
        if self.broken:
            return None
        found = self.by_identity.get(id(resource))
        if found is None or found[1] is not resource:
            return None
        seq, _ = found
        position = seq - self.items[0][0]
        try:
            self._send_up_to(position + 1 + WINDOW)
            outcome = self.helper._await(seq)
        except _HelperGone:
            self.broken = True
            return None
        verdict = _verdict(outcome)
        if verdict is not None:
            self.helper.verdicts_used += 1
        return verdict


def _verdict(outcome: object) -> Verdict | None:
    if outcome is None:
        return Verdict(None)
    if isinstance(outcome, list) and len(outcome) == 2:
        status, issues = outcome
        return Verdict(FhirError(status, [Issue(code, text, expression=expr) for code, text, expr in issues]))
    return None  # the helper could not decide: validate inline


# -- the helper process -------------------------------------------------------------------


def serve() -> None:
    """The helper's loop: frames of [seq, type, resource] in, frames of [seq, outcome] out."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the server: the parent decides
    source, sink = sys.stdin.buffer, sys.stdout.buffer

    def write(message) -> None:
        payload = orjson.dumps(message)
        sink.write(_HEADER.pack(len(payload)) + payload)
        sink.flush()

    model_class("Patient")  # import the models before saying ready
    write("ready")
    while True:
        header = source.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # the server process went away
        (size,) = _HEADER.unpack(header)
        items = exact_json.loads(source.read(size))
        write([[seq, _outcome(resource_type, resource)] for seq, resource_type, resource in items])


def _outcome(resource_type: str, resource: dict) -> object:
    try:
        error = model_error(model_class(resource_type), resource)
    except Exception:  # noqa: BLE001 — the worker will validate this one itself
        return "undecided"
    if error is None:
        return None
    return [error.status, [[i.code, i.diagnostics, i.expression] for i in error.issues]]


helper = ValidationHelper(enabled=os.environ.get("FHIRGATE_VALIDATION_HELPER", "1") != "0")
