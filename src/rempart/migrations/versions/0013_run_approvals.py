"""payment run requests: a run above the threshold waits for a second staff member's approval

Revision ID: 0013_run_approvals
Revises: 0012_incidents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rempart.db
from rempart.tenancy import disable_tenant_rls, enable_tenant_rls

revision = "0013_run_approvals"
down_revision = "0012_incidents"
branch_labels = None
depends_on = None

_TIME = rempart.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payment_run_requests",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("cutoff_date", sa.Date(), nullable=False),
        sa.Column("claim_count", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "waiting",
                "approved",
                "refused",
                "lapsed",
                name="runrequeststatus",
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
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by <> requested_by",
            name=op.f("ck_payment_run_requests_second_person_decides"),
        ),
        sa.CheckConstraint(
            "(status = 'waiting') = (decided_by IS NULL)", name=op.f("ck_payment_run_requests_decided_unless_waiting")
        ),
        sa.CheckConstraint(
            "status = 'approved' OR run_id IS NULL", name=op.f("ck_payment_run_requests_only_approved_has_a_run")
        ),
        sa.CheckConstraint(
            "claim_count >= 0 AND total_cents >= 0", name=op.f("ck_payment_run_requests_totals_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"],
            ["insurers.id"],
            name=op.f("fk_payment_run_requests_insurer_id_insurers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "run_id"],
            ["payment_runs.insurer_id", "payment_runs.id"],
            name=op.f("fk_payment_run_requests_insurer_id_payment_runs"),
        ),
        sa.PrimaryKeyConstraint("insurer_id", "id", name=op.f("pk_payment_run_requests")),
    )
    op.create_index("ix_payment_run_requests_run", "payment_run_requests", ["insurer_id", "run_id"], unique=True)
    enable_tenant_rls(op, "payment_run_requests")


def downgrade() -> None:
    disable_tenant_rls(op, "payment_run_requests")
    op.drop_index("ix_payment_run_requests_run", table_name="payment_run_requests")
    op.drop_table("payment_run_requests")
