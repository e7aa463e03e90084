"""EHR integrations: connected hospitals' upstream servers and applications' sealed EHR credentials

Revision ID: 0022_ehr_integrations
Revises: 0021_lookup_resource_id
Create Date: 2026-12-06 23:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0022_ehr_integrations"
down_revision = "0021_lookup_resource_id"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hospital_upstreams",
        sa.Column("hospital_id", sa.String(length=40), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=False),
        sa.Column("auth_kind", sa.String(length=20), nullable=False),
        sa.Column("token_url", sa.String(length=2048), nullable=True),
        sa.Column("api_key_header", sa.String(length=100), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("test_credentials", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "auth_kind IN ('backend_services', 'client_secret', 'bearer_token', 'api_key')",
            name=op.f("ck_hospital_upstreams_auth_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"],
            ["hospitals.id"],
            name=op.f("fk_hospital_upstreams_hospital_id_hospitals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("hospital_id", name=op.f("pk_hospital_upstreams")),
    )
    op.create_table(
        "integration_credentials",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("hospital_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('own', 'test')", name=op.f("ck_integration_credentials_mode")),
        sa.CheckConstraint(
            "mode = 'test' OR sealed IS NOT NULL", name=op.f("ck_integration_credentials_sealed_own")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name=op.f("fk_integration_credentials_client_id_oauth_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["hospital_id"],
            ["hospitals.id"],
            name=op.f("fk_integration_credentials_hospital_id_hospitals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "hospital_id", name=op.f("pk_integration_credentials")),
    )
    with op.batch_alter_table("integration_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_integration_credentials_hospital_id"), ["hospital_id"], unique=False
        )
    op.create_table(
        "integration_salts",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("passphrase_check", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name=op.f("fk_integration_salts_client_id_oauth_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_integration_salts")),
    )


    op.create_table(
        "integration_token_keys",
        sa.Column("kid", sa.String(length=24), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_integration_token_keys")),
    )
    with op.batch_alter_table("integration_token_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_integration_token_keys_expires_at"), ["expires_at"], unique=False)


def downgrade():
    with op.batch_alter_table("integration_token_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_integration_token_keys_expires_at"))
    op.drop_table("integration_token_keys")
    op.drop_table("integration_salts")
    with op.batch_alter_table("integration_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_integration_credentials_hospital_id"))
    op.drop_table("integration_credentials")
    op.drop_table("hospital_upstreams")
