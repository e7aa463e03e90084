"""drop the reference index by target alone: every reference lookup names the source type and
parameter, so the lookup index answers it, and each reference row cost one B-tree insert more

Revision ID: 0005_drop_reference_target
Revises: 0004_number_values
Create Date: 2026-11-23 08:40:00

"""
from alembic import op


revision = '0005_drop_reference_target'
down_revision = '0004_number_values'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('fhir_idx_reference', schema=None) as batch_op:
        batch_op.drop_index('ix_fhir_idx_reference_target')


def downgrade():
    with op.batch_alter_table('fhir_idx_reference', schema=None) as batch_op:
        batch_op.create_index('ix_fhir_idx_reference_target', ['hospital_id', 'target_type', 'target_id'], unique=False)
