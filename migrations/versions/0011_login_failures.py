"""failed-login counters shared by every worker and host (fixed windows, keyed by an HMAC)

Revision ID: 0011_login_failures
Revises: 0010_grant_serial
Create Date: 2026-11-25 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0011_login_failures'
down_revision = '0010_grant_serial'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'login_failures',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('window_ends', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_login_failures')),
    )


def downgrade():
    op.drop_table('login_failures')
