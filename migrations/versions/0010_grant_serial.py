"""a serial per application grant, carried by the application's tokens

Revision ID: 0010_grant_serial
Revises: 0009_owner_index_id_first
Create Date: 2026-12-06 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0010_grant_serial'
down_revision = '0009_owner_index_id_first'
branch_labels = None
depends_on = None


def upgrade():
    # Existing grants get serial 0, the serial a token without the claim stands for: tokens
    # issued before the upgrade keep working until they expire (at most FHIRGATE_TOKEN_TTL).
    with op.batch_alter_table('app_grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('serial', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('app_grants', schema=None) as batch_op:
        batch_op.drop_column('serial')
