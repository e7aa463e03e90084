"""oauth_authorizations and oauth_refresh_tokens: SMART App Launch approvals, their codes and
refresh tokens (keyed hashes only)

Revision ID: 0016_authorizations
Revises: 0015_app_registration
Create Date: 2026-12-06 12:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0016_authorizations'
down_revision = '0015_app_registration'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'oauth_authorizations',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('hospital_id', sa.String(length=40), nullable=False),
        sa.Column('patient_id', sa.String(length=64), nullable=False),
        sa.Column('scope', sa.Text(), nullable=False),
        sa.Column('nonce', sa.String(length=500), nullable=True),
        sa.Column('code_hash', sa.String(length=64), nullable=True),
        sa.Column('code_expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('code_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('redirect_uri', sa.Text(), nullable=False),
        sa.Column('code_challenge', sa.String(length=128), nullable=False),
        sa.Column('session_hash', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_reason', sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.client_id'],
                                name=op.f('fk_oauth_authorizations_client_id_oauth_clients'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'],
                                name=op.f('fk_oauth_authorizations_hospital_id_hospitals'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_oauth_authorizations_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_authorizations')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_oauth_authorizations_code_hash')),
    )
    with op.batch_alter_table('oauth_authorizations', schema=None) as batch_op:
        for column in ('client_id', 'user_id', 'hospital_id'):
            batch_op.create_index(batch_op.f(f'ix_oauth_authorizations_{column}'), [column], unique=False)
    op.create_table(
        'oauth_refresh_tokens',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('authorization_id', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['authorization_id'], ['oauth_authorizations.id'],
                                name=op.f('fk_oauth_refresh_tokens_authorization_id_oauth_authorizations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_oauth_refresh_tokens')),
    )
    with op.batch_alter_table('oauth_refresh_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_refresh_tokens_authorization_id'), ['authorization_id'], unique=False)


def downgrade():
    op.drop_table('oauth_refresh_tokens')
    op.drop_table('oauth_authorizations')
