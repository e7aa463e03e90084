"""A thread for light requests in every worker, whatever heavy requests are running.

A worker serving its connections one request at a time on one thread makes a read queued
behind a two-second search wait two seconds, whoever sent the search (under the issue's load
test, a read's p95 went from 1.5 ms to 3.7 s). So production gives each granian worker two
threads (``--blocking-threads 2``) and lets at most ``FHIRGATE_HEAVY_SLOTS`` of them (one) run
a heavy request — a FHIR search, a history, ``$everything``, a Bundle, a conditional write — at
a time: the other thread is always there for reads, writes by id, tokens and pages. A further heavy
request, while the slots are taken, is answered at once with 429 and ``Retry-After`` (an
OperationOutcome) rather than take that thread; light requests pass untouched. A slot is taken
once the caller is known (after its token is checked, before its share is charged), so that
strangers' refused requests never hold one. The interpreter
lock is handed between the threads every 0.5 ms (``app.factory``), so a read waits at most
that long for a search's Python.

How much heavy work each client and hospital may do over time is ``fhir.fair_share``'s
business; this module only keeps heavy work from taking every thread of a worker at once.
"""

from __future__ import annotations

import re
import threading

from flask import Flask, current_app, g

from fhir.errors import THROTTLED, FhirError, Issue

# Heavy: whatever runs a search — a search (GET or HEAD [base], [type] or Patient/{id}/[type],
# POST [base]/_search or [type]/_search), any history, $everything, a batch or transaction
# (POST [base]), and the conditional writes (PUT or DELETE [type]?criteria, POST [type] with
# If-None-Exist). A read of one resource, and a write by id, is light.
_HEAVY_GET = re.compile(
    r"/fhir/[^/]+(?:/(?:[A-Z][A-Za-z]+|(?:[^/]+/){0,2}_history|Patient/[^/]+/(?:\$everything|[A-Z][A-Za-z]+)))?/?"
)
_HEAVY_POST = re.compile(r"/fhir/[^/]+(?:/(?:[A-Z][A-Za-z]+/)?_search)?/?")
_TYPE = re.compile(r"/fhir/[^/]+/[A-Z][A-Za-z]+/?")
RETRY_AFTER_S = 1


def is_heavy(environ) -> bool:
    method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
    if method in ("GET", "HEAD"):
        return _HEAVY_GET.fullmatch(path) is not None
    if method == "POST":
        if _HEAVY_POST.fullmatch(path) is not None:
            return True
        return "HTTP_IF_NONE_EXIST" in environ and _TYPE.fullmatch(path) is not None
    return method in ("PUT", "DELETE") and _TYPE.fullmatch(path) is not None


class HeavySlots:
    """This worker's slots for heavy requests (a semaphore: threads share the process's)."""

    def __init__(self, slots: int):
        self._slots = threading.BoundedSemaphore(slots)

    def claim(self) -> bool:
        """Take a slot for this request (released at its teardown), or answer False at once."""
        if not self._slots.acquire(blocking=False):
            return False
        g.heavy_slot = self
        return True

    def release(self) -> None:
        self._slots.release()


def release_heavy_slot(_error=None) -> None:
    """``teardown_request``: give back the slot this request took, if any."""
    slots = g.pop("heavy_slot", None)
    if slots is not None:
        slots.release()


def busy() -> FhirError:
    """429 with ``Retry-After``: this worker's heavy slots are all taken."""
    message = f"The server is busy with other searches; retry after {RETRY_AFTER_S} s."
    return FhirError(429, [Issue(THROTTLED, message)], {"Retry-After": str(RETRY_AFTER_S)})


def claim_heavy_slot() -> None:
    """For a heavy FHIR request whose caller is known (so that a stranger's request takes no
    slot): a slot of this worker, or 429 at once."""
    if not current_app.extensions["fhirgate_heavy_slots"].claim():
        raise busy()


def init_heavy_slots(app: Flask) -> None:
    app.extensions["fhirgate_heavy_slots"] = HeavySlots(app.config["FHIRGATE_HEAVY_SLOTS"])
    app.teardown_request(release_heavy_slot)
