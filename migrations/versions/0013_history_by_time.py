"""fhir_history by hospital and last_updated: an incremental sync (``_history?_since=``) reads
the versions written since an instant without scanning the hospital's whole history

Revision ID: 0013_history_by_time
Revises: 0012_hospital_fhir_limits
Create Date: 2026-12-06 07:00:00

"""
from alembic import op


revision = '0013_history_by_time'
down_revision = '0012_hospital_fhir_limits'
branch_labels = None
depends_on = None

NAME = 'ix_fhir_history_hospital_updated'


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        # Built outside a transaction, CONCURRENTLY: a plain CREATE INDEX would hold every write
        # to the history (every write of the FHIR API) until it is built.
        with op.get_context().autocommit_block():
            op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS {NAME}')  # a failed earlier try
            op.execute(f'CREATE INDEX CONCURRENTLY {NAME} ON fhir_history (hospital_id, last_updated)')
        return
    op.create_index(NAME, 'fhir_history', ['hospital_id', 'last_updated'], unique=False)


def downgrade():
    op.drop_index(NAME, table_name='fhir_history')
