"""a hospital's own FHIR API rate limits (per client and for the whole hospital), in points

Revision ID: 0012_hospital_fhir_limits
Revises: 0011_login_failures
Create Date: 2026-12-06 03:40:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0012_hospital_fhir_limits'
down_revision = '0011_login_failures'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('hospitals') as batch:
        batch.add_column(sa.Column('fhir_client_limit', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('fhir_hospital_limit', sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table('hospitals') as batch:
        batch.drop_column('fhir_hospital_limit')
        batch.drop_column('fhir_client_limit')
