"""Bulk Data $export: durable export jobs and the ndjson files each wrote

Revision ID: 0020_bulk_export
Revises: 0019_ehr_launch
Create Date: 2026-12-06 15:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0020_bulk_export'
down_revision = '0019_ehr_launch'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'bulk_export_jobs',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('hospital_id', sa.String(length=40), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('client_kind', sa.String(length=32), nullable=False),
        sa.Column('patient_id', sa.String(length=64), nullable=True),
        sa.Column('smart_context', sa.String(length=16), nullable=True),
        sa.Column('subject', sa.String(length=100), nullable=True),
        sa.Column('scopes', sa.Text(), nullable=False),
        sa.Column('level', sa.String(length=8), nullable=False),
        sa.Column('group_id', sa.String(length=64), nullable=True),
        sa.Column('request_url', sa.Text(), nullable=False),
        sa.Column('parameters', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=100), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('transaction_time', sa.DateTime(timezone=True), nullable=True),
        sa.Column('exported', sa.BigInteger(), nullable=False),
        sa.Column('progress', sa.String(length=200), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'],
                                name=op.f('fk_bulk_export_jobs_hospital_id_hospitals'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_export_jobs')),
    )
    with op.batch_alter_table('bulk_export_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_export_jobs_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_bulk_export_jobs_client', ['hospital_id', 'client_id', 'status'], unique=False)
    op.create_table(
        'bulk_export_files',
        sa.Column('job_id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('resource_type', sa.String(length=64), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('bytes', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['bulk_export_jobs.id'],
                                name=op.f('fk_bulk_export_files_job_id_bulk_export_jobs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'name', name=op.f('pk_bulk_export_files')),
    )


def downgrade():
    op.drop_table('bulk_export_files')
    op.drop_table('bulk_export_jobs')
