"""owner indexes keyed by resource id first: every lookup by owner names all three columns, and
a B-tree insert compares keys column by column, so leading with the id (nearly always the
column that differs) costs about half of leading with the hospital and type every key shares

Revision ID: 0009_owner_index_id_first
Revises: 0008_app_access_requests
Create Date: 2026-11-24 00:10:00

"""
from alembic import op


revision = '0009_owner_index_id_first'
down_revision = '0008_app_access_requests'
branch_labels = None
depends_on = None

OWNED = ['fhir_idx_string', 'fhir_idx_token', 'fhir_idx_reference', 'fhir_idx_date', 'fhir_idx_number',
         'fhir_idx_quantity', 'fhir_idx_uri', 'fhir_compartments']


def _recreate(columns):
    if op.get_bind().dialect.name == 'postgresql':
        # Built beside the old index and swapped in, each step outside a transaction: a plain
        # DROP and CREATE would lock every index table against writes until all eight are built.
        with op.get_context().autocommit_block():
            for table in OWNED:
                name = f'ix_{table}_owner'
                op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS {name}_next')  # a failed earlier try
                op.execute(f'CREATE INDEX CONCURRENTLY {name}_next ON {table} ({", ".join(columns)})')
                op.execute(f'DROP INDEX CONCURRENTLY {name}')
                op.execute(f'ALTER INDEX {name}_next RENAME TO {name}')
        return
    for table in OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_owner')
            batch_op.create_index(f'ix_{table}_owner', columns, unique=False)


def upgrade():
    _recreate(['resource_id', 'resource_type', 'hospital_id'])


def downgrade():
    _recreate(['hospital_id', 'resource_type', 'resource_id'])
