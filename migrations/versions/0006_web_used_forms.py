"""one-time forms of the web portals

Revision ID: 0006_web_used_forms
Revises: 0005_drop_reference_target
Create Date: 2026-11-23 09:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006_web_used_forms'
down_revision = '0005_drop_reference_target'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'web_used_forms',
        sa.Column('form_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_web_used_forms_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('form_hash', name=op.f('pk_web_used_forms')),
    )
    with op.batch_alter_table('web_used_forms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_used_forms_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('web_used_forms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_used_forms_user_id'))
    op.drop_table('web_used_forms')
