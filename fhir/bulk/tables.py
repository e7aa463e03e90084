"""Tables of export jobs and the files they wrote."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text

from app.extensions import db

jobs = Table(
    "bulk_export_jobs",
    db.metadata,
    Column("id", String(32), primary_key=True),
    Column("hospital_id", String(40), ForeignKey("hospitals.id", ondelete="CASCADE"), nullable=False),
    # Who asked, as its token said at the kick-off: only that client (and patient) sees the job,
    # and the export is narrowed by these scopes, whatever happens to the token later.
    Column("client_id", String(64), nullable=False),
    Column("client_kind", String(32), nullable=False),
    Column("patient_id", String(64), nullable=True),
    Column("smart_context", String(16), nullable=True),
    Column("subject", String(100), nullable=True),  # the token's sub: the person, for an approval
    Column("scopes", Text, nullable=False),
    Column("level", String(8), nullable=False),  # system, patient, group
    Column("group_id", String(64), nullable=True),
    Column("request_url", Text, nullable=False),
    Column("parameters", Text, nullable=False),  # JSON, see kickoff.ExportRequest
    Column("status", String(12), nullable=False),  # queued, running, completed, failed, cancelled
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker", String(100), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("transaction_time", DateTime(timezone=True), nullable=True),
    Column("exported", BigInteger, nullable=False, default=0),
    Column("progress", String(200), nullable=True),
    Column("error", String(500), nullable=True),
    Index("ix_bulk_export_jobs_status_created", "status", "created_at"),
    Index("ix_bulk_export_jobs_client", "hospital_id", "client_id", "status"),
)

files = Table(
    "bulk_export_files",
    db.metadata,
    Column("job_id", String(32), ForeignKey("bulk_export_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(8), nullable=False),  # output, error
    Column("resource_type", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
)
