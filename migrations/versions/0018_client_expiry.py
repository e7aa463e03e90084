"""oauth_clients.expires_at: a patient's key pair may end by itself, when its patient chose

Revision ID: 0018_client_expiry
Revises: 0017_user_disabled
Create Date: 2026-12-06 14:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0018_client_expiry'
down_revision = '0017_user_disabled'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
