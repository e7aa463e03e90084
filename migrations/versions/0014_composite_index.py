"""fhir_idx_composite: the rows of composite search parameters read in repeated elements
(component-code-value-quantity and the like), one per element and pair of values, so that a
search pairs values of one element only.
Resources stored before have none (nor :of-type and :identifier rows): ``fhirgate reindex``
makes them.

Revision ID: 0014_composite_index
Revises: 0013_history_by_time
Create Date: 2026-12-06 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0014_composite_index'
down_revision = '0013_history_by_time'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'fhir_idx_composite',
        sa.Column('hospital_id', sa.String(length=40), nullable=False),
        sa.Column('resource_type', sa.String(length=64), nullable=False),
        sa.Column('resource_id', sa.String(length=64), nullable=False),
        sa.Column('param', sa.String(length=100), nullable=False),
        sa.Column('system', sa.String(length=256), nullable=True),
        sa.Column('code', sa.String(length=256), nullable=True),
        sa.Column('value_system', sa.String(length=256), nullable=True),
        sa.Column('value_code', sa.String(length=256), nullable=True),
        sa.Column('value_unit', sa.String(length=256), nullable=True),
        sa.Column('value_number', sa.Numeric(precision=36, scale=12), nullable=True),
        sa.Column('value_low', sa.DateTime(timezone=True), nullable=True),
        sa.Column('value_high', sa.DateTime(timezone=True), nullable=True),
        sa.Column('value_string', sa.String(length=200), nullable=True),
    )
    op.create_index('ix_fhir_idx_composite_lookup', 'fhir_idx_composite',
                    ['hospital_id', 'resource_type', 'param', 'code', 'system'], unique=False)
    op.create_index('ix_fhir_idx_composite_owner', 'fhir_idx_composite',
                    ['resource_id', 'resource_type', 'hospital_id'], unique=False)


def downgrade():
    op.drop_index('ix_fhir_idx_composite_owner', table_name='fhir_idx_composite')
    op.drop_index('ix_fhir_idx_composite_lookup', table_name='fhir_idx_composite')
    op.drop_table('fhir_idx_composite')
