"""identity: practices, professionals, API clients and tokens; tenant walls (RLS) and the app role

Revision ID: 0002_identity
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rempart.db
from rempart.config import get_settings
from rempart.identity.rls import (
    DEFAULT_APP_ROLE,
    FOUNDATION_TENANT_TABLES,
    app_role_sql,
    disable_tenant_rls,
    enable_tenant_rls,
)

revision = "0002_identity"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

_PROFESSIONS = (
    "pharmacist",
    "optician",
    "audioprosthetist",
    "dentist",
    "physician",
    "midwife",
    "nurse",
    "physiotherapist",
    "lab",
    "radiology",
    "hospital",
    "transport",
)


def _enum(name: str, *values: str, length: int) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def _when() -> rempart.db.UTCDateTime:
    return rempart.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "practices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("finess", sa.String(length=9), nullable=True),
        sa.Column("am_number", sa.String(length=9), nullable=True),
        sa.Column("profession", _enum("profession", *_PROFESSIONS, length=20), nullable=False),
        sa.Column("status", _enum("practicestatus", "active", "suspended", length=10), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.CheckConstraint("am_number IS NULL OR length(am_number) = 9", name=op.f("ck_practices_am_number_length")),
        sa.CheckConstraint("finess IS NOT NULL OR am_number IS NOT NULL", name=op.f("ck_practices_identified")),
        sa.CheckConstraint("finess IS NULL OR length(finess) = 9", name=op.f("ck_practices_finess_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practices")),
        sa.UniqueConstraint("am_number", name=op.f("uq_practices_am_number")),
        sa.UniqueConstraint("finess", name=op.f("uq_practices_finess")),
    )
    op.create_table(
        "professionals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rpps", sa.String(length=11), nullable=False),
        sa.Column("profession", _enum("profession", *_PROFESSIONS, length=20), nullable=False),
        sa.Column("status", _enum("professionalstatus", "active", "suspended", length=10), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.CheckConstraint("length(rpps) = 11", name=op.f("ck_professionals_rpps_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_professionals")),
        sa.UniqueConstraint("rpps", name=op.f("uq_professionals_rpps")),
    )
    op.create_table(
        "practice_memberships",
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("ended_at", _when(), nullable=True),
        sa.CheckConstraint(
            "ended_at IS NULL OR ended_at >= started_at", name=op.f("ck_practice_memberships_period_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_practice_memberships_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_practice_memberships_professional_id_professionals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("practice_id", "professional_id", name=op.f("pk_practice_memberships")),
    )
    op.create_index("ix_practice_memberships_professional", "practice_memberships", ["professional_id"])
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", _enum("clientstatus", "active", "revoked", length=10), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=True),
        sa.Column("revoked_at", _when(), nullable=True),
        sa.CheckConstraint(
            "(status = 'revoked') = (revoked_at IS NOT NULL)", name=op.f("ck_api_clients_revocation_dated")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_api_clients_practice_id_practices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
    )
    op.create_index(op.f("ix_api_clients_practice_id"), "api_clients", ["practice_id"])
    op.create_table(
        "api_client_keys",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("status", _enum("clientkeystatus", "active", "revoked", length=10), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("revoked_at", _when(), nullable=True),
        sa.CheckConstraint(
            "(status = 'revoked') = (revoked_at IS NOT NULL)", name=op.f("ck_api_client_keys_revocation_dated")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_api_client_keys_client_id_api_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("client_id", "kid", name=op.f("pk_api_client_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_api_client_keys_kid")),
    )
    op.create_table(
        "access_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("jkt", sa.String(length=64), nullable=False),
        sa.Column("issued_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.CheckConstraint("expires_at > issued_at", name=op.f("ck_access_tokens_lifetime_positive")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_access_tokens_client_id_api_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_access_tokens")),
    )
    op.create_index("ix_access_tokens_client", "access_tokens", ["client_id"])
    op.create_index("ix_access_tokens_expires_at", "access_tokens", ["expires_at"])

    # -- tenant walls (PostgreSQL only) ----------------------------------------------------------
    if op.get_bind().dialect.name == "postgresql":
        for statement in app_role_sql(get_settings().database_app_role or DEFAULT_APP_ROLE):
            op.execute(statement)
    enable_tenant_rls(op, *FOUNDATION_TENANT_TABLES)


def downgrade() -> None:
    disable_tenant_rls(op, *FOUNDATION_TENANT_TABLES)
    op.drop_index("ix_access_tokens_expires_at", table_name="access_tokens")
    op.drop_index("ix_access_tokens_client", table_name="access_tokens")
    op.drop_table("access_tokens")
    op.drop_table("api_client_keys")
    op.drop_index(op.f("ix_api_clients_practice_id"), table_name="api_clients")
    op.drop_table("api_clients")
    op.drop_index("ix_practice_memberships_professional", table_name="practice_memberships")
    op.drop_table("practice_memberships")
    op.drop_table("professionals")
    op.drop_table("practices")
