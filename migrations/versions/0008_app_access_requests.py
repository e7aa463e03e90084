"""applications asking hospitals for access

Revision ID: 0008_app_access_requests
Revises: 0007_client_public_keys
Create Date: 2026-11-23 11:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0008_app_access_requests'
down_revision = '0007_client_public_keys'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'app_access_requests',
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('hospital_id', sa.String(length=40), nullable=False),
        sa.Column('scope', sa.Text(), nullable=False),
        sa.Column('message', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.client_id'],
                                name=op.f('fk_app_access_requests_client_id_oauth_clients'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'],
                                name=op.f('fk_app_access_requests_hospital_id_hospitals'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('client_id', 'hospital_id', name=op.f('pk_app_access_requests')),
    )
    with op.batch_alter_table('app_access_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_access_requests_hospital_id'), ['hospital_id'], unique=False)


def downgrade():
    with op.batch_alter_table('app_access_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_access_requests_hospital_id'))
    op.drop_table('app_access_requests')
