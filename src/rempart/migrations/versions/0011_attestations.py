"""attestations: insurers' signing keys, attestations issued, claims made under one

Revision ID: 0011_attestations
Revises: 0003_care
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rempart.db
from rempart.migrations.constraints import replace_check, values_in
from rempart.tenancy import disable_tenant_rls, enable_tenant_rls

revision = "0011_attestations"
down_revision = "0003_care"
branch_labels = None
depends_on = None

_REASONS = (
    "not-covered-at-date-of-care",
    "domain-not-covered",
    "approval-missing",
    "approval-not-granted",
    "approval-expired",
    "approval-exceeded",
    "approval-mismatch",
    "approval-already-used",
    "ceiling-exhausted",
    "duplicate-claim",
    "price-over-regulated-limit",
    "manual-review",
    "rejected-by-insurer",
)
_ATTESTATION_REASONS = ("attestation-expired", "attestation-key-revoked", "attestation-domain-not-covered")


def _enum(name: str, length: int, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    op.create_table(
        "attestation_keys",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", _enum("signingkeystate", 8, "active", "retired", "revoked"), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(state = 'revoked') = (revoked_at IS NOT NULL)", name=op.f("ck_attestation_keys_revoked_has_a_time")
        ),
        sa.CheckConstraint(
            "state = 'active' OR retired_at IS NOT NULL OR revoked_at IS NOT NULL",
            name=op.f("ck_attestation_keys_ended_has_a_time"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_attestation_keys_version_positive")),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_attestation_keys_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("insurer_id", "kid", name=op.f("pk_attestation_keys")),
    )
    op.create_index("ix_attestation_keys_kid", "attestation_keys", ["kid"], unique=True)
    op.create_index("ix_attestation_keys_version", "attestation_keys", ["insurer_id", "version"], unique=True)
    op.create_index(
        "ix_attestation_keys_active",
        "attestation_keys",
        ["insurer_id"],
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )
    op.create_table(
        "attestations",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("reason", _enum("issuereason", 12, "beneficiary", "mailing", "renewal"), nullable=False),
        sa.Column("issued_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("third_party_payment", sa.Integer(), nullable=False),
        sa.Column("prior_approval", sa.Integer(), nullable=False),
        sa.CheckConstraint("valid_to >= valid_from", name=op.f("ck_attestations_validity_ordered")),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_attestations_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"],
            ["beneficiaries.insurer_id", "beneficiaries.id"],
            name=op.f("fk_attestations_insurer_id_beneficiaries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "contract_id"],
            ["contracts.insurer_id", "contracts.id"],
            name=op.f("fk_attestations_insurer_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "kid"],
            ["attestation_keys.insurer_id", "attestation_keys.kid"],
            name=op.f("fk_attestations_insurer_id_attestation_keys"),
        ),
        sa.PrimaryKeyConstraint("insurer_id", "id", name=op.f("pk_attestations")),
    )
    op.create_index("ix_attestations_id", "attestations", ["id"], unique=True)
    op.create_index("ix_attestations_beneficiary", "attestations", ["insurer_id", "beneficiary_id", "valid_to"])
    enable_tenant_rls(op, "attestation_keys", "attestations")

    op.add_column("products", sa.Column("attestation_days", sa.Integer(), server_default="14", nullable=False))
    # SQLite adds neither a CHECK nor a composite foreign key to an existing table (batch mode's
    # copy would fire the cascades of the tables that point at it): there the service keeps them.
    op.add_column("claims", sa.Column("attestation_id", sa.Uuid(), nullable=True))
    op.create_index("ix_claims_attestation", "claims", ["insurer_id", "attestation_id", "created_at"])
    if op.get_bind().dialect.name != "sqlite":
        op.create_check_constraint(
            op.f("ck_products_attestation_days_range"), "products", "attestation_days BETWEEN 1 AND 56"
        )
        op.create_foreign_key(
            op.f("fk_claims_insurer_id_attestations"),
            "claims",
            "attestations",
            ["insurer_id", "attestation_id"],
            ["insurer_id", "id"],
        )
    replace_check("claims", "claimreason", values_in("reason_code", (*_REASONS, *_ATTESTATION_REASONS)))


def downgrade() -> None:
    claims = sa.table("claims", sa.column("reason_code", sa.String))
    op.execute(
        sa.update(claims)
        .where(claims.c.reason_code.in_(_ATTESTATION_REASONS))
        .values(reason_code="rejected-by-insurer")
    )
    replace_check("claims", "claimreason", values_in("reason_code", _REASONS))
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("fk_claims_insurer_id_attestations"), "claims", type_="foreignkey")
        op.drop_constraint(op.f("ck_products_attestation_days_range"), "products", type_="check")
    op.drop_index("ix_claims_attestation", "claims")
    op.drop_column("claims", "attestation_id")
    op.drop_column("products", "attestation_days")
    disable_tenant_rls(op, "attestation_keys", "attestations")
    op.drop_table("attestations")
    op.drop_table("attestation_keys")
