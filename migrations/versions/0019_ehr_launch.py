"""EHR launch: the clinician role (with its Practitioner), oauth_launches (single-use launch
contexts, hashed), an approval's fhirUser, and the signing algorithms an application registers

Revision ID: 0019_ehr_launch
Revises: 0018_client_expiry
Create Date: 2026-12-06 14:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0019_ehr_launch'
down_revision = '0018_client_expiry'
branch_labels = None
depends_on = None

BEFORE = "role IN ('superadmin', 'hospital-admin', 'developer', 'patient')"
AFTER = "role IN ('superadmin', 'hospital-admin', 'developer', 'patient', 'clinician')"


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_users_role'), AFTER)
        batch_op.add_column(sa.Column('practitioner_id', sa.String(length=64), nullable=True))
    with op.batch_alter_table('oauth_authorizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fhir_user', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('redirect_uri_sent', sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('id_token_alg', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('access_token_alg', sa.String(length=10), nullable=True))
    op.create_table(
        'oauth_launches',
        sa.Column('launch_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('hospital_id', sa.String(length=40), nullable=False),
        sa.Column('patient_id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.client_id'],
                                name=op.f('fk_oauth_launches_client_id_oauth_clients'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'],
                                name=op.f('fk_oauth_launches_hospital_id_hospitals'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_oauth_launches_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('launch_hash', name=op.f('pk_oauth_launches')),
    )
    with op.batch_alter_table('oauth_launches', schema=None) as batch_op:
        for column in ('client_id', 'hospital_id', 'user_id'):
            batch_op.create_index(batch_op.f(f'ix_oauth_launches_{column}'), [column], unique=False)


def downgrade():
    op.drop_table('oauth_launches')
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_column('access_token_alg')
        batch_op.drop_column('id_token_alg')
    with op.batch_alter_table('oauth_authorizations', schema=None) as batch_op:
        batch_op.drop_column('redirect_uri_sent')
        batch_op.drop_column('fhir_user')
    op.execute("DELETE FROM users WHERE role = 'clinician'")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('practitioner_id')
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_users_role'), BEFORE)
