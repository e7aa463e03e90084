"""An AuditEvent for every FHIR request, written off the request path.

Each request's facts (who, which client and kind, patient context, interaction, what was
returned, outcome, source address) are queued by an ``after_request`` hook; a writer
thread in each worker turns them into FHIR AuditEvent resources and stores them in the
hospital's own store in batches, where admins read them through the management API and
tokens with ``system/AuditEvent.rs`` search them like any resource. The same batches keep
each credential's ``last_used_at``. No header, token or secret is ever recorded.
"""

from __future__ import annotations

import atexit
import base64
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Flask, Response, current_app, g, request
from sqlalchemy import bindparam

from app.extensions import db
from fhir.audit_index import audit_index
from fhir.audit_tally import RefusalTally, period_text
from fhir.model_classes import is_resource_type
from fhir.response_size import returned_resources
from fhir.search.registry import indexed_params
from fhir.storage.repository import format_instant
from fhir.storage.sql import SqlRepository, time_ordered_id
from oauth import OAuthClient

log = logging.getLogger(__name__)

BATCH = 500
# The writer gathers events this long before a write: one transaction per request would cost
# each request a second transaction's CPU, taken from the request threads (the GIL).
LINGER_S = 0.2
# Every 16 events (~2 ms of building) the writer steps aside for 0.1 ms; without it a read
# under load waited behind it (p99 under wrk -c4: 32-57 ms, with it 15-31 ms).
YIELD_EVERY, YIELD_S = 16, 0.0001
MAX_ENTITIES = 200
ACTIONS = {"create": "C", "update": "U", "patch": "U", "delete": "D", "operation": "E", "transaction": "E"}
EVENT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
PATIENT_ROLE = {
    "system": "http://terminology.hl7.org/CodeSystem/object-role",
    "code": "1",
    "display": "Patient",
}


@dataclass
class RequestFacts:
    hospital_id: str
    recorded: datetime
    interaction: str
    method: str
    path: str
    query: str
    status: int
    address: str | None
    client_id: str | None
    client_kind: str | None
    patient_id: str | None
    resource_type: str | None
    resource_id: str | None
    # The resources a Bundle response carried, noted as it was spliced (never its parsed body).
    references: list[str] = field(default_factory=list)
    # A summary of tallied refusals (fhir.audit_tally): how many, since when.
    count: int = 1
    period_start: datetime | None = None


def fast_path_facts(
    environ: dict,
    hospital_id: str,
    principal,
    endpoint: str,
    resource_type: str,
    *,
    resource_id: str | None = None,
    query: str = "",
    references: list[str] | None = None,
) -> RequestFacts:
    """The facts of a GET answered 200 beneath Flask (``app.fast_path``), as ``record_request``
    would gather them for the view ``endpoint``."""
    return RequestFacts(
        hospital_id=hospital_id,
        recorded=datetime.now(UTC),
        interaction=INTERACTIONS[endpoint],
        method="GET",
        path=environ["PATH_INFO"],
        query=query,
        status=200,
        address=environ.get("REMOTE_ADDR"),
        client_id=principal.client_id,
        client_kind=principal.kind,
        patient_id=principal.patient_id,
        resource_type=resource_type,
        resource_id=resource_id,
        references=references or [],
    )


def _returned_references(facts: RequestFacts) -> list[str]:
    refs = []
    if facts.resource_type and facts.resource_id:
        refs.append(f"{facts.resource_type}/{facts.resource_id}")
    if facts.status < 300:
        refs.extend(facts.references)
    return list(dict.fromkeys(refs))[:MAX_ENTITIES]


def audit_event(facts: RequestFacts) -> dict:
    """The FHIR R4B AuditEvent of one request."""
    outcome = "0" if facts.status < 400 else "4" if facts.status < 500 else "8"
    agent = {
        "type": {"text": facts.client_kind or "anonymous"},
        "altId": facts.client_id or "anonymous",
        "name": facts.client_kind or "anonymous",
        "requestor": True,
    }
    if facts.address:
        agent["network"] = {"address": facts.address[:100], "type": "2"}
    entities = [{"what": {"reference": ref}} for ref in _returned_references(facts)]
    if facts.patient_id:
        entities.append({"what": {"reference": f"Patient/{facts.patient_id}"}, "role": PATIENT_ROLE})
    if facts.query:
        entities.append({"type": {"code": "query"}, "query": base64.b64encode(facts.query.encode()).decode()})
    event = {
        "resourceType": "AuditEvent",
        "type": EVENT_TYPE,
        "subtype": [{"system": INTERACTION_SYSTEM, "code": facts.interaction}],
        "action": ACTIONS.get(facts.interaction, "R"),
        "recorded": format_instant(facts.recorded),
        "outcome": outcome,
        "outcomeDesc": (
            period_text(facts)
            if facts.count > 1 or facts.period_start
            else f"HTTP {facts.status} for {facts.method} {facts.path}"
        )[:500],
        "agent": [agent],
        "source": {"observer": {"display": "fhirgate"}, "site": facts.hospital_id},
    }
    if entities:
        event["entity"] = entities
    if facts.period_start:
        event["period"] = {"start": format_instant(facts.period_start), "end": format_instant(facts.recorded)}
    return event


class AuditWriter:
    """A per-process queue and writer thread (started lazily, so it survives a fork)."""

    def __init__(self, app: Flask):
        self.app = app
        self.queue: queue.Queue[RequestFacts | None] = queue.Queue(maxsize=100_000)
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self.refusals = RefusalTally()
        atexit.register(self.flush)

    def record_refusal(self, facts: RequestFacts) -> None:
        """A request refused without a valid token, or over its share: tallied
        (``fhir.audit_tally``)."""
        now_due, closed = self.refusals.admit(facts)
        for summary in closed:
            self.record(summary)
        if now_due:
            self.record(facts)

    def record(self, facts: RequestFacts) -> None:
        if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                    self._pid = os.getpid()
                    self._thread = threading.Thread(target=self._run, name="fhirgate-audit", daemon=True)
                    self._thread.start()
        self.queue.put(facts)  # blocks when 100,000 behind: slow down rather than lose events

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued event is stored (tests, shutdown)."""
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            return
        for summary in self.refusals.due(everything=True):
            self.queue.put(summary)
        done = threading.Event()
        self.queue.put(done)  # type: ignore[arg-type]
        done.wait(timeout)

    def _next(self) -> RequestFacts | threading.Event | None:
        """The next queued item; while refusal tallies are open, wake each second to close
        the windows that have ended (their summaries are queued, the first returned)."""
        while True:
            try:
                return self.queue.get(timeout=1.0 if self.refusals.pending() else None)
            except queue.Empty:
                for summary in self.refusals.due():
                    self.queue.put(summary)

    def _run(self) -> None:
        while True:
            item = self._next()
            batch, markers = [], []
            deadline = time.monotonic() + LINGER_S
            while item is not None:
                if isinstance(item, threading.Event):
                    markers.append(item)  # someone waits for the store: write now
                    deadline = 0.0
                else:
                    batch.append(item)
                if len(batch) >= BATCH:
                    break
                remaining = deadline - time.monotonic()
                try:
                    item = self.queue.get(timeout=remaining) if remaining > 0 else self.queue.get_nowait()
                except queue.Empty:
                    item = None
            if batch:
                try:
                    self._write(batch)
                except Exception:  # one bad event must not lose the others: store them one by one
                    for facts in batch:
                        try:
                            self._write([facts])
                        except Exception as error:  # keep the writer alive; say what was lost
                            log.error(
                                "could not store the audit event of %s: %s", facts.path, type(error).__name__
                            )
            for marker in markers:
                marker.set()

    def _write(self, batch: list[RequestFacts]) -> None:
        with self.app.app_context():
            # The session itself, not the scoped proxy: each use of the proxy looks it up again.
            session = db.session()
            try:
                events: dict[str, list] = {}
                last_used: dict[str, datetime] = {}
                for n, facts in enumerate(batch, 1):
                    if n % YIELD_EVERY == 0:
                        # Hand the interpreter lock to a waiting request now: it would otherwise
                        # wait out the 5 ms switch interval, again after each of its own waits.
                        time.sleep(YIELD_S)
                    event = audit_event(facts)
                    resource_id = time_ordered_id(facts.recorded)
                    events.setdefault(facts.hospital_id, []).append((event, resource_id, audit_index(event)))
                    if facts.client_id and facts.status < 400:
                        last_used[facts.client_id] = max(
                            facts.recorded, last_used.get(facts.client_id, facts.recorded)
                        )
                for hospital_id, entries in events.items():
                    SqlRepository(session, hospital_id).append(entries)
                if last_used:
                    # One executemany for every credential of the batch: a statement each
                    # held the GIL from the request threads for ~0.3 ms apiece.
                    clients = OAuthClient.__table__
                    session.execute(
                        clients.update()
                        .where(clients.c.client_id == bindparam("used_client"))
                        .values(last_used_at=bindparam("used_at")),
                        [{"used_client": key, "used_at": moment} for key, moment in last_used.items()],
                    )
                session.commit()
            finally:
                db.session.remove()


INTERACTIONS = {
    "fhir.read": "read",
    "fhir.vread": "vread",
    "fhir.create": "create",
    "fhir.update": "update",
    "fhir.conditional_update_route": "update",
    "fhir.patch": "patch",
    "fhir.delete": "delete",
    "fhir.conditional_delete_route": "delete",
    "fhir.search": "search-type",
    "fhir.search_post": "search-type",
    "fhir.compartment_search": "search-compartment",
    "fhir.system_search": "search-system",
    "fhir.system_search_post": "search-system",
    "fhir.type_history": "history-type",
    "fhir.instance_history": "history-instance",
    "fhir.hospital_history": "history-system",
    "fhir.everything": "operation",
    "fhir.batch_or_transaction": "transaction",
    # Bulk Data $export: the kick-off, and its status, cancel and file downloads.
    "fhir.bulk_export_system": "operation",
    "fhir.bulk_export_patient": "operation",
    "fhir.bulk_export_group": "operation",
    "fhir.bulk_status": "operation",
    "fhir.bulk_cancel": "operation",
    "fhir.bulk_file": "operation",
}


BUNDLE_ENDPOINTS = {
    "fhir.search",
    "fhir.system_search",
    "fhir.system_search_post",
    "fhir.compartment_search",
    "fhir.search_post",
    "fhir.type_history",
    "fhir.instance_history",
    "fhir.hospital_history",
    "fhir.everything",
    "fhir.batch_or_transaction",
}
# Credentials a client may wrongly put in a URL (OAuth's, and the "three locks" key headers'
# names). A name that is a search parameter of the type searched is FHIR's and is kept: the
# search parameter ``code`` is not an OAuth authorization code.
NEVER_RECORDED = frozenset(
    {"access_token", "client_secret", "client_assertion", "code", "code_verifier", "refresh_token",
     "password", "x-api-secret", "id_token"}
)  # fmt: skip


SEARCH_ENDPOINTS = frozenset(
    {
        "fhir.search",
        "fhir.search_post",
        "fhir.compartment_search",
        "fhir.system_search",
        "fhir.system_search_post",
    }
)
# Endpoints about one Patient (its record, a type within its compartment): the audit names it.
PATIENT_ENDPOINTS = frozenset({"fhir.everything", "fhir.compartment_search"})


def _recorded_query() -> str:
    """The search parameters (URL and ``POST _search`` form), minus credential-like values."""
    pairs = list(request.args.items(multi=True))
    if request.endpoint in ("fhir.search_post", "fhir.system_search_post"):
        pairs += list(request.form.items(multi=True))
    resource_type = (request.view_args or {}).get("resource_type")
    searching = request.endpoint in SEARCH_ENDPOINTS and resource_type and is_resource_type(resource_type)
    searched = indexed_params(resource_type) if searching else {}
    kept = [(k, v) for k, v in pairs if _parameter_name(k) in searched or k.lower() not in NEVER_RECORDED]
    return urlencode(kept)[:1000]


def _parameter_name(key: str) -> str:
    """``code:text`` → ``code``; ``subject:Patient.name`` → ``subject``."""
    return key.split(".", 1)[0].split(":", 1)[0]


# Public discovery documents: no token, no data, nothing worth an AuditEvent (or a share).
PUBLIC_ENDPOINTS = frozenset({"fhir.metadata", "fhir.smart_configuration_document"})


def record_request(response: Response) -> Response:
    """``after_request`` of the FHIR blueprint: queue this request's AuditEvent."""
    hospital_id = g.get("hospital_id")
    if not hospital_id or not g.get("hospital_known") or request.endpoint in PUBLIC_ENDPOINTS:
        return response
    principal = g.get("fhir_principal")
    view_args = request.view_args or {}
    facts = RequestFacts(
        hospital_id=hospital_id,
        recorded=datetime.now(UTC),
        interaction=INTERACTIONS.get(request.endpoint or "", "unknown"),
        method=request.method,
        path=request.path[:300],
        query=_recorded_query(),
        status=response.status_code,
        address=request.remote_addr,
        client_id=principal.client_id if principal else None,
        client_kind=principal.kind if principal else None,
        patient_id=principal.patient_id if principal else None,
        resource_type="Patient" if request.endpoint in PATIENT_ENDPOINTS else view_args.get("resource_type"),
        resource_id=view_args.get("resource_id") or view_args.get("patient_id"),
        # Only Bundles list several resources; a single resource is named by the URL.
        references=returned_resources() if request.endpoint in BUNDLE_ENDPOINTS else [],
    )
    if principal is None or response.status_code == 429:
        audit_writer().record_refusal(facts)
    else:
        audit_writer().record(facts)
    return response


def audit_writer() -> AuditWriter:
    return current_app.extensions["fhirgate_audit"]


def init_audit(app: Flask) -> None:
    app.extensions["fhirgate_audit"] = AuditWriter(app)
