"""number and quantity index rows keep their value, indexed

Revision ID: 0004_number_values
Revises: 0003_auth_epoch
Create Date: 2026-11-23 07:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0004_number_values'
down_revision = '0003_auth_epoch'
branch_labels = None
depends_on = None

TABLES = {'fhir_idx_number': ['hospital_id', 'resource_type', 'param'],
          'fhir_idx_quantity': ['hospital_id', 'resource_type', 'param', 'code']}


def upgrade():
    for table, lookup in TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('value', sa.Numeric(precision=36, scale=12), nullable=True))
        # The value is the middle of the stored precision range.
        op.execute(f'UPDATE {table} SET value = (low + high) / 2')
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('value', existing_type=sa.Numeric(precision=36, scale=12), nullable=False)
            batch_op.drop_index(f'ix_{table}_lookup')
            batch_op.create_index(f'ix_{table}_lookup', [*lookup, 'value'], unique=False)


def downgrade():
    for table, lookup in TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_lookup')
            batch_op.create_index(f'ix_{table}_lookup', [*lookup, 'low'], unique=False)
            batch_op.drop_column('value')
