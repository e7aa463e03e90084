"""The common FHIR read, answered beneath Flask.

``GET /fhir/{hospital}/{Type}/{id}`` with a bearer token is the API's most frequent request.
Flask's request handling, the blueprint's hooks and the response object cost about two
thirds of its answer, so this WSGI middleware answers it itself with the functions the view
path uses: ``verified_claims`` and ``principal_for`` (the two halves of ``authenticate_bearer``:
token, audience, revocation, three-locks headers), the ``AccessPolicy``'s scope check, the
same headers and the same AuditEvent facts for the audit writer. Its one query reads the
revocation epoch and the row together (``app.direct_reads``): the epoch is adopted as the
request's, so the token is judged against the snapshot the row comes from. The read is
admitted against its client's and hospital's shares (``fhir.fair_share``: in this worker's
memory, or one Redis script with ``REDIS_URL``); a read over its share, or for a hospital
whose limits this worker last read over 30 s ago, goes to the view (which answers 429, or
reads the limits).

It answers a 200 only, and only when nothing narrows the read beyond the scope check: no
query string, an ``Accept`` it meets (JSON, R4B), no conditional read headers, a hospital
this worker has seen, a scope without search restrictions, and for a patient token only its
own Patient (the compartment of any other type needs a query the view makes). Everything
else — every error, every other request — goes on untouched to the Flask view, which decides
and renders it. PostgreSQL only (direct reads); ``FHIRGATE_READ_FAST_PATH=0`` turns it off.
"""

from __future__ import annotations

import re

from app.fast_path import FastPath
from app.integrations.gateway import connected_at
from fhir.audit import audit_writer, fast_path_facts
from fhir.errors import FhirError
from fhir.fair_share import WEIGHTS, Admission
from fhir.http import NO_STORE, accepts_this_server, resource_headers
from fhir.model_classes import is_resource_type
from fhir.policy import AccessPolicy
from fhir.storage.sql import CURRENT_ROW_COLUMNS, stored_from_text
from fhir.version import FHIR_JSON
from oauth import EPOCH_QUERY, InvalidTokenError, adopt_request_epoch, principal_for, verified_claims

# Hospital ids and FHIR ids (R4B datatypes.html#id) only: anything else is the view's to judge.
_READ_PATH = re.compile(r"/fhir/([A-Za-z0-9\-.]{1,40})/([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})")
# The revocation epoch and the current row in one round trip; no row: NULLs after the epoch.
# Built from constants only; the request's values are the statement's parameters.
_ROW_WITH_EPOCH = (
    f"SELECT ({EPOCH_QUERY}), {', '.join('r.' + column for column in CURRENT_ROW_COLUMNS)}"  # noqa: S608
    " FROM (SELECT 1) AS one LEFT JOIN fhir_resources AS r"
    " ON r.hospital_id = $1 AND r.resource_type = $2 AND r.id = $3"
)
_CONTENT_TYPE = ("Content-Type", f"{FHIR_JSON}; charset=utf-8")
_PLAIN_ACCEPTS = frozenset({FHIR_JSON, "application/json", "*/*"})  # met without parsing
# A read here takes a fraction of a millisecond: its weight is all it costs (fhir/fair_share.py).
READ = WEIGHTS["read"]


def plain_request(environ) -> bool:
    """No conditional read and an ``Accept`` this server meets: otherwise the view decides."""
    if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ:
        return False
    accept = environ.get("HTTP_ACCEPT")
    return accept is None or accept in _PLAIN_ACCEPTS or accepts_this_server(accept)


class ReadFastPath(FastPath):
    """In front of the Flask app and the token fast path (inside ``ProxyFix``)."""

    name = "read fast path"

    def takes(self, environ) -> bool:
        return (
            environ.get("REQUEST_METHOD") == "GET"
            and environ.get("PATH_INFO", "").startswith("/fhir/")
            and self.app.config["FHIRGATE_READ_FAST_PATH"]
        )

    def answer(self, environ) -> tuple[bytes, list[tuple[str, str]]] | None:
        matched = _READ_PATH.fullmatch(environ["PATH_INFO"])
        if matched is None or environ.get("QUERY_STRING") or not plain_request(environ):
            return None
        hospital_id, resource_type, resource_id = matched.groups()
        if hospital_id not in self.app.extensions.get("fhirgate_known_hospitals", ()):
            return None
        reads = self.app.extensions["fhirgate_direct_reads"]
        if not reads.available or not is_resource_type(resource_type):
            return None
        with self.app.app_context():
            # Nothing is read for a caller without a token of ours for this hospital.
            try:
                claims = verified_claims(environ.get("HTTP_AUTHORIZATION"), hospital_id)
            except InvalidTokenError:
                return None
            # The revocation epoch and the row in one statement, from one snapshot.
            rows = reads.run("fhirgate_read_with_epoch", _ROW_WITH_EPOCH, matched.groups())
            if not rows:
                return None
            adopt_request_epoch(int(rows[0][0] or 0))
            if connected_at(self.app, hospital_id, int(rows[0][0] or 0)):
                return None  # its upstream EHR answers (the view forwards it)
            stored = stored_from_text(resource_type, resource_id, rows[0][1:])
            try:
                principal = principal_for(
                    claims,
                    hospital_id,
                    api_key=environ.get("HTTP_X_API_KEY"),
                    api_secret=environ.get("HTTP_X_API_SECRET"),
                )
                policy = AccessPolicy(principal)
                if policy.require("read", resource_type) is not None:
                    return None  # v2 search restrictions: the view's query applies them
            except (InvalidTokenError, FhirError):
                return None
            own_record = (resource_type, resource_id) == ("Patient", policy.patient_id)
            if policy.patient_id is not None and not own_record:
                return None  # the compartment decides: the view's query
            if stored is None or stored.deleted:
                return None  # the view's 404 or 410
            share = self.app.extensions["fhirgate_fair_share"]
            limits = share.fresh_limits(hospital_id)
            if limits is None:
                return None  # the view reads the hospital's limits (once in a while)
            admitted = share.admit(limits, hospital_id, principal.client_id, READ, heavy=False)
            if not isinstance(admitted, Admission):
                return None  # over its share: the view answers 429 (a refusal charges nothing)
            facts = fast_path_facts(
                environ, hospital_id, principal, "fhir.read", resource_type, resource_id=resource_id
            )
            audit_writer().record(facts)
            body = (stored.content or "").encode()
            headers = [_CONTENT_TYPE, ("Content-Length", str(len(body))), NO_STORE]
            headers += resource_headers(stored, hospital_id).items()
        return body, headers
