"""The Bulk Data routes (Bulk Data Access 2.0): kick-off at three levels, status, cancel, files.

They belong to the FHIR blueprint, so that a token, the fair share and the audit trail are
handled as for every FHIR request. A job is seen only by the client that started it (and, for a
patient's token, that patient): any other caller gets 404, as for a job that never was.
"""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime
from urllib.parse import urlencode

import orjson
from flask import current_app, g, request

from app.extensions import db
from app.timeutil import as_utc, utcnow
from fhir.access import current_principal, repository_for
from fhir.bulk import jobs as job_store
from fhir.bulk.kickoff import parameters_of, read_export_request
from fhir.bulk.storage import export_storage
from fhir.bulk.worker import announce_job
from fhir.errors import INFORMATIONAL, FhirError, Issue, operation_outcome
from fhir.http import _response, base_url, json_body
from fhir.policy import AccessPolicy
from fhir.search.builder import SearchBuilder
from fhir.storage.repository import format_instant
from fhir.views import _lenient, bp
from oauth import Principal

NDJSON = "application/fhir+ndjson"
RETRY_AFTER_S = "1"


@bp.route("/$export", methods=["GET", "POST"])
def bulk_export_system():
    return _kickoff("system")


@bp.route("/Patient/$export", methods=["GET", "POST"])
def bulk_export_patient():
    return _kickoff("patient")


@bp.route("/Group/<group_id>/$export", methods=["GET", "POST"])
def bulk_export_group(group_id):
    return _kickoff("group", group_id)


def _kickoff(level: str, group_id: str | None = None):
    principal = current_principal(g.hospital_id)
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise FhirError.invalid("$export runs asynchronously: send Prefer: respond-async.")
    policy = AccessPolicy(principal)
    if policy.context == "patient" and level != "patient":
        raise FhirError.simple(403, "forbidden", "A patient's token exports its own record: Patient/$export.")
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        pairs += parameters_of(json_body())
    builder = SearchBuilder(g.hospital_id, base_url(g.hospital_id))
    export, applied = read_export_request(pairs, policy, level, builder, lenient=_lenient())
    if group_id is not None:
        repository_for(principal).read("Group", group_id)  # 404 (or 403) before a job is queued
    connection = db.session.connection()
    config = current_app.config
    if (
        job_store.active_jobs(connection, g.hospital_id, principal.client_id)
        >= config["FHIRGATE_EXPORT_ACTIVE_PER_CLIENT"]
    ):
        message = "This client has as many exports waiting or running as it may; wait for one to finish."
        raise FhirError(429, [Issue("throttled", message)], {"Retry-After": "60"})
    # The kick-off as the server applied it; a POST's URL without its parameters (Bulk Data 2.0).
    query = f"?{urlencode(applied)}" if applied and request.method == "GET" else ""
    job_id = job_store.create_job(
        connection,
        hospital_id=g.hospital_id,
        client_id=principal.client_id,
        client_kind=principal.kind,
        patient_id=principal.patient_id,
        smart_context=principal.smart_context,
        subject=principal.subject,
        scopes=" ".join(principal.scopes),
        level=level,
        group_id=group_id,
        request_url=config["FHIRGATE_BASE_URL"] + request.path + query,
        parameters=export.as_json(),
    )
    announce_job()
    db.session.commit()
    note = Issue(
        INFORMATIONAL, "The export is queued; poll the Content-Location for its status.", "information"
    )
    headers = {"Content-Location": _status_url(job_id)}
    return _response(orjson.dumps(operation_outcome([note])), 202, headers)


def _status_url(job_id: str) -> str:
    return f"{base_url(g.hospital_id)}/bulk-status/{job_id}"


def _own_job(job_id: str):
    """The caller's job, or 404: a job started by another client — or by the same client for
    another person, patient or context (a clinician's hospital-wide export is not the patient's
    to read, though one app holds both tokens) — does not exist for it."""
    principal: Principal = current_principal(g.hospital_id)
    job = job_store.find_job(db.session.connection(), g.hospital_id, job_id)
    if (
        job is None
        or (job.client_id, job.patient_id, job.smart_context, job.subject)
        != (principal.client_id, principal.patient_id, principal.smart_context, principal.subject)
        or job.status == "cancelled"
    ):
        raise FhirError.not_found("No such export: it was never started here, was cancelled, or has expired.")
    if job.expires_at is not None and as_utc(job.expires_at) < utcnow():
        raise FhirError.not_found("This export has expired and its files are deleted.")
    return job


@bp.get("/bulk-status/<job_id>")
def bulk_status(job_id):
    job = _own_job(job_id)
    if job.status in job_store.ACTIVE:
        progress = job.progress if job.status == "running" else "Waiting for a worker"
        headers = {"Retry-After": RETRY_AFTER_S, "X-Progress": progress or "Running"}
        note = Issue(INFORMATIONAL, f"In progress: {headers['X-Progress']}.", "information")
        return _response(orjson.dumps(operation_outcome([note])), 202, headers)
    if job.status == "failed":
        raise FhirError(500, [Issue("exception", job.error or "The export failed.")])
    manifest = _manifest(job, job_store.job_files(db.session.connection(), job.id))
    response = current_app.response_class(orjson.dumps(manifest), 200, mimetype="application/json")
    response.headers["Expires"] = format_datetime(as_utc(job.expires_at).astimezone(UTC), usegmt=True)
    return response


def _manifest(job, files) -> dict:
    base = base_url(job.hospital_id)

    def entry(row) -> dict:
        return {
            "type": row.resource_type,
            "url": f"{base}/bulk-files/{job.id}/{row.name}",
            "count": row.count,
        }

    return {
        "transactionTime": format_instant(as_utc(job.transaction_time)),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [entry(row) for row in files if row.kind == "output"],
        "error": [entry(row) for row in files if row.kind == "error"],
    }


@bp.delete("/bulk-status/<job_id>")
def bulk_cancel(job_id):
    job = _own_job(job_id)
    files_can_go = job_store.cancel(db.session.connection(), job.id)
    db.session.commit()
    if files_can_go:
        export_storage().delete_job(job.id)
    note = Issue(INFORMATIONAL, "The export is cancelled and its files deleted.", "information")
    return _response(orjson.dumps(operation_outcome([note])), 202)


@bp.get("/bulk-files/<job_id>/<name>")
def bulk_file(job_id, name):
    job = _own_job(job_id)
    listed = {row.name: row for row in job_store.job_files(db.session.connection(), job.id)}
    chunks = export_storage().chunks(job.id, name) if job.status == "completed" and name in listed else None
    if chunks is None:
        raise FhirError.not_found("No such file in this export.")
    db.session.rollback()  # nothing more to read: the connection goes back before the download
    response = current_app.response_class(chunks, 200, mimetype=NDJSON)
    response.headers["Content-Length"] = str(listed[name].bytes)
    return response
