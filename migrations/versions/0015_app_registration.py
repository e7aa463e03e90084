"""oauth_clients: an application's SMART App Launch registration (redirect URIs, launch URL,
home page, publisher)

Revision ID: 0015_app_registration
Revises: 0014_composite_index
Create Date: 2026-12-06 11:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0015_app_registration'
down_revision = '0014_composite_index'
branch_labels = None
depends_on = None

COLUMNS = (
    ('redirect_uris', sa.Text()),
    ('launch_uri', sa.String(length=2048)),
    ('client_uri', sa.String(length=2048)),
    ('publisher', sa.String(length=200)),
)


def upgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        for name, kind in COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))


def downgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
