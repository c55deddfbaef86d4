"""the back office's decisions: formulas versioned by effective date, retired products, claims
agents' rejection reasons and comments, member exports under a second staff member's approval

Revision ID: 0014_back_office
Revises: 0013_run_approvals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rempart.db
from rempart.tenancy import disable_tenant_rls, enable_tenant_rls

revision = "0014_back_office"
down_revision = "0013_run_approvals"
branch_labels = None
depends_on = None

_TIME = rempart.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    # Formulas: the date of care a version applies from joins the primary key; today's formulas
    # apply since ever, as they did.
    with op.batch_alter_table("guarantees") as batch:
        batch.add_column(sa.Column("valid_from", sa.Date(), nullable=False, server_default="2000-01-01"))
        batch.add_column(sa.Column("valid_to", sa.Date(), nullable=True))
        batch.drop_constraint("pk_guarantees", type_="primary")
        batch.create_primary_key("pk_guarantees", ["insurer_id", "product_id", "care_domain", "valid_from"])
        batch.create_check_constraint("valid_period", "valid_to IS NULL OR valid_to > valid_from")
    with op.batch_alter_table("guarantees") as batch:
        batch.alter_column("valid_from", server_default=None)

    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("retired_on", sa.Date(), nullable=True))

    with op.batch_alter_table("claims") as batch:
        batch.add_column(
            sa.Column(
                "review_reason",
                sa.Enum(
                    "care-not-performed",
                    "documents-missing",
                    "amount-disputed",
                    "duplicate",
                    "not-covered",
                    "other",
                    name="reviewreason",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("review_comment_enc", sa.LargeBinary(), nullable=True))

    op.create_table(
        "member_exports",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=False),
        sa.Column("product_code", sa.String(length=32), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "waiting",
                "approved",
                "refused",
                "downloaded",
                "lapsed",
                name="exportstatus",
                native_enum=False,
                create_constraint=True,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", _TIME, nullable=True),
        sa.Column("downloaded_at", _TIME, nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by <> requested_by", name=op.f("ck_member_exports_second_person_decides")
        ),
        sa.CheckConstraint(
            "status IN ('waiting', 'lapsed') OR decided_by IS NOT NULL",
            name=op.f("ck_member_exports_decided_unless_waiting_or_lapsed"),
        ),
        sa.CheckConstraint(
            "(status = 'downloaded') = (downloaded_at IS NOT NULL)", name=op.f("ck_member_exports_downloaded_when_done")
        ),
        sa.CheckConstraint(
            "row_count IS NULL OR row_count >= 0", name=op.f("ck_member_exports_row_count_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_member_exports_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("insurer_id", "id", name=op.f("pk_member_exports")),
    )
    op.create_index("ix_member_exports_requested", "member_exports", ["insurer_id", "requested_at"])
    enable_tenant_rls(op, "member_exports")


def downgrade() -> None:
    disable_tenant_rls(op, "member_exports")
    op.drop_index("ix_member_exports_requested", table_name="member_exports")
    op.drop_table("member_exports")
    with op.batch_alter_table("claims") as batch:
        batch.drop_column("review_comment_enc")
        batch.drop_constraint("reviewreason", type_="check")
        batch.drop_column("review_reason")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("retired_on")
    op.execute("DELETE FROM guarantees WHERE valid_from <> '2000-01-01'")
    with op.batch_alter_table("guarantees") as batch:
        batch.drop_constraint("valid_period", type_="check")
        batch.drop_constraint("pk_guarantees", type_="primary")
        batch.create_primary_key("pk_guarantees", ["insurer_id", "product_id", "care_domain"])
        batch.drop_column("valid_to")
        batch.drop_column("valid_from")
