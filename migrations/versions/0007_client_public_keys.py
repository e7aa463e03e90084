"""private_key_jwt: clients' public keys, their last assertion failure, used assertion ids

Revision ID: 0007_client_public_keys
Revises: 0006_web_used_forms
Create Date: 2026-11-23 11:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0007_client_public_keys'
down_revision = '0006_web_used_forms'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jwks', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('jwks_uri', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('assertion_failure', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('assertion_failure_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'used_assertions',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_used_assertions')),
    )
    with op.batch_alter_table('used_assertions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_assertions_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('used_assertions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_assertions_expires_at'))
    op.drop_table('used_assertions')
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_column('assertion_failure_at')
        batch_op.drop_column('assertion_failure')
        batch_op.drop_column('jwks_uri')
        batch_op.drop_column('jwks')
