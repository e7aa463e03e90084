"""Token and reference lookup indexes end with the resource id

A search checks each candidate resource against its other criteria with one probe per
criterion. On the old lookup indexes a token probe (``code = Y`` of resource R) found every
resource with the code and then filtered them for R: 6,708 index rows for one patient's 23
Observations of a common code. With the resource id (and a reference's target type) in the key,
the probe is one exact look-up; the indexes keep serving every look-up they served, as their
leading columns are unchanged.

Revision ID: 0021_lookup_resource_id
Revises: 0020_bulk_export
Create Date: 2026-12-06 18:20:00

"""
from alembic import op

revision = '0021_lookup_resource_id'
down_revision = '0020_bulk_export'
branch_labels = None
depends_on = None

TOKEN = ['hospital_id', 'resource_type', 'param', 'code', 'system']
REFERENCE = ['hospital_id', 'resource_type', 'param', 'target_id']


def upgrade():
    op.drop_index('ix_fhir_idx_token_lookup', table_name='fhir_idx_token')
    op.create_index('ix_fhir_idx_token_lookup', 'fhir_idx_token', [*TOKEN, 'resource_id'])
    op.drop_index('ix_fhir_idx_reference_lookup', table_name='fhir_idx_reference')
    op.create_index(
        'ix_fhir_idx_reference_lookup', 'fhir_idx_reference', [*REFERENCE, 'target_type', 'resource_id']
    )


def downgrade():
    op.drop_index('ix_fhir_idx_reference_lookup', table_name='fhir_idx_reference')
    op.create_index('ix_fhir_idx_reference_lookup', 'fhir_idx_reference', REFERENCE)
    op.drop_index('ix_fhir_idx_token_lookup', table_name='fhir_idx_token')
    op.create_index('ix_fhir_idx_token_lookup', 'fhir_idx_token', TOKEN)
