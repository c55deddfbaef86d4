"""care: rights checks, ceiling usage, prior approvals, claims, payment runs and remittances

Revision ID: 0003_care
Revises: 0002_identity
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rempart.db
from rempart.tenancy import disable_tenant_rls, enable_practice_reads, enable_tenant_rls

revision = "0003_care"
down_revision = "0002_identity"
branch_labels = None
depends_on = None

TENANT_TABLES = (
    "rights_checks",
    "ceiling_usage",
    "prior_approvals",
    "prior_approval_lines",
    "claims",
    "claim_lines",
    "payment_runs",
    "remittances",
    "remittance_lines",
    "members_import_jobs",
)
# Practice software reads its own checks, approvals, claims and remittances by id, across insurers.
PRACTICE_READ_TABLES = ("rights_checks", "prior_approvals", "claims", "remittances")


def upgrade() -> None:
    op.create_table(
        "members_import_jobs",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "done",
                "failed",
                name="importstatus",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.Column("file_format", sa.String(length=8), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("contracts_created", sa.Integer(), nullable=False),
        sa.Column("beneficiaries_created", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=False),
        sa.Column("failure", sa.String(length=300), nullable=True),
        sa.Column("started_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "contracts_created >= 0 AND beneficiaries_created >= 0 AND unchanged >= 0 AND rejected >= 0",
            name=op.f("ck_members_import_jobs_counters_non_negative"),
        ),
        sa.CheckConstraint(
            "rows_done >= 0 AND rows_done <= rows_total", name=op.f("ck_members_import_jobs_progress_within_total")
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_members_import_jobs_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("insurer_id", "id", name=op.f("pk_members_import_jobs")),
    )
    op.create_table(
        "payment_runs",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("cutoff_date", sa.Date(), nullable=False),
        sa.Column("started_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claim_count", sa.Integer(), nullable=False),
        sa.Column("remittance_count", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "claim_count >= 0 AND remittance_count >= 0 AND total_cents >= 0",
            name=op.f("ck_payment_runs_totals_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_payment_runs_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("insurer_id", "id", name=op.f("pk_payment_runs")),
    )
    op.create_table(
        "remittances",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("remittance_number", sa.String(length=24), nullable=False),
        sa.Column("payment_run_id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("paid_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claim_count", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("claim_count >= 1 AND total_cents >= 0", name=op.f("ck_remittances_totals_valid")),
        sa.ForeignKeyConstraint(
            ["insurer_id", "payment_run_id"],
            ["payment_runs.insurer_id", "payment_runs.id"],
            name=op.f("fk_remittances_insurer_id_payment_run_id_payment_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.id"], name=op.f("fk_remittances_practice_id_practices")),
        sa.PrimaryKeyConstraint("insurer_id", "id", name=op.f("pk_remittances")),
        sa.UniqueConstraint(
            "insurer_id",
            "payment_run_id",
            "practice_id",
            name=op.f("uq_remittances_insurer_id_payment_run_id_practice_id"),
        ),
        sa.UniqueConstraint(
            "insurer_id", "remittance_number", name=op.f("uq_remittances_insurer_id_remittance_number")
        ),
    )
    with op.batch_alter_table("remittances", schema=None) as batch_op:
        batch_op.create_index("ix_remittances_id", ["id"], unique=True)
        batch_op.create_index("ix_remittances_practice", ["practice_id", "paid_at"], unique=False)

    op.create_table(
        "ceiling_usage",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column(
            "care_domain",
            sa.Enum(
                "PHAR",
                "OPTI",
                "AUDI",
                "DENT",
                "HOSP",
                "CONS",
                "LABO",
                "AUXM",
                "RADI",
                "TRAN",
                name="caredomain",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("ceiling_cents", sa.Integer(), nullable=False),
        sa.Column("used_cents", sa.Integer(), nullable=False),
        sa.CheckConstraint("used_cents <= ceiling_cents", name=op.f("ck_ceiling_usage_within_ceiling")),
        sa.CheckConstraint("used_cents >= 0", name=op.f("ck_ceiling_usage_used_non_negative")),
        sa.CheckConstraint("year BETWEEN 2000 AND 2200", name=op.f("ck_ceiling_usage_year_range")),
        sa.ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"],
            ["beneficiaries.insurer_id", "beneficiaries.id"],
            name=op.f("fk_ceiling_usage_insurer_id_beneficiary_id_beneficiaries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("insurer_id", "beneficiary_id", "care_domain", "year", name=op.f("pk_ceiling_usage")),
    )
    op.create_table(
        "rights_checks",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("care_date", sa.Date(), nullable=False),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("expires_at > created_at", name=op.f("ck_rights_checks_expires_after_creation")),
        sa.ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"],
            ["beneficiaries.insurer_id", "beneficiaries.id"],
            name=op.f("fk_rights_checks_insurer_id_beneficiary_id_beneficiaries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "contract_id"],
            ["contracts.insurer_id", "contracts.id"],
            name=op.f("fk_rights_checks_insurer_id_contract_id_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_rights_checks_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.id"], name=op.f("fk_rights_checks_practice_id_practices")),
        sa.ForeignKeyConstraint(
            ["professional_id"], ["professionals.id"], name=op.f("fk_rights_checks_professional_id_professionals")
        ),
        sa.PrimaryKeyConstraint("insurer_id", "id", name=op.f("pk_rights_checks")),
    )
    with op.batch_alter_table("rights_checks", schema=None) as batch_op:
        batch_op.create_index("ix_rights_checks_id", ["id"], unique=True)

    op.create_table(
        "prior_approvals",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("approval_number", sa.String(length=20), nullable=False),
        sa.Column("check_id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column(
            "care_domain",
            sa.Enum(
                "PHAR",
                "OPTI",
                "AUDI",
                "DENT",
                "HOSP",
                "CONS",
                "LABO",
                "AUXM",
                "RADI",
                "TRAN",
                name="caredomain",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "granted",
                "partially_granted",
                "refused",
                "pending",
                "cancelled",
                name="approvalstatus",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "reason_code",
            sa.Enum(
                "not-covered-at-date-of-care",
                "domain-not-covered",
                "price-over-regulated-limit",
                "ceiling-exhausted",
                "ceiling-partly-used",
                "manual-review",
                "refused-by-insurer",
                name="approvalreason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("requested_cents", sa.BigInteger(), nullable=False),
        sa.Column("granted_cents", sa.BigInteger(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("cancelled_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claim_id", sa.Uuid(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "care_domain IN ('OPTI', 'AUDI', 'DENT', 'HOSP')", name=op.f("ck_prior_approvals_approval_domain")
        ),
        sa.CheckConstraint(
            "status <> 'cancelled' OR cancelled_at IS NOT NULL", name=op.f("ck_prior_approvals_cancellation_time")
        ),
        sa.CheckConstraint(
            "status <> 'refused' OR (reason_code IS NOT NULL AND granted_cents = 0)",
            name=op.f("ck_prior_approvals_refusal_reason"),
        ),
        sa.CheckConstraint(
            "granted_cents >= 0 AND granted_cents <= requested_cents",
            name=op.f("ck_prior_approvals_granted_within_requested"),
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"],
            ["beneficiaries.insurer_id", "beneficiaries.id"],
            name=op.f("fk_prior_approvals_insurer_id_beneficiary_id_beneficiaries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "check_id"],
            ["rights_checks.insurer_id", "rights_checks.id"],
            name=op.f("fk_prior_approvals_insurer_id_check_id_rights_checks"),
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_prior_approvals_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_prior_approvals_practice_id_practices")
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"], ["professionals.id"], name=op.f("fk_prior_approvals_professional_id_professionals")
        ),
        sa.PrimaryKeyConstraint("insurer_id", "id", name=op.f("pk_prior_approvals")),
        sa.UniqueConstraint(
            "insurer_id", "approval_number", name=op.f("uq_prior_approvals_insurer_id_approval_number")
        ),
        sa.UniqueConstraint("insurer_id", "claim_id", name=op.f("uq_prior_approvals_insurer_id_claim_id")),
        sa.UniqueConstraint(
            "insurer_id",
            "practice_id",
            "idempotency_key",
            name=op.f("uq_prior_approvals_insurer_id_practice_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("prior_approvals", schema=None) as batch_op:
        batch_op.create_index("ix_prior_approvals_id", ["id"], unique=True)
        batch_op.create_index("ix_prior_approvals_practice", ["practice_id", "created_at"], unique=False)

    op.create_table(
        "claims",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("check_id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("approval_id", sa.Uuid(), nullable=True),
        sa.Column("replaces_id", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "accepted",
                "rejected",
                "pending_review",
                "paid",
                "cancelled",
                "superseded",
                name="claimstatus",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "reason_code",
            sa.Enum(
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
                name="claimreason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("first_care_date", sa.Date(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("amo_cents", sa.BigInteger(), nullable=False),
        sa.Column("insurer_cents", sa.BigInteger(), nullable=False),
        sa.Column("remainder_cents", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("closed_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("payment_run_id", sa.Uuid(), nullable=True),
        sa.Column("paid_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'paid') = (paid_at IS NOT NULL AND payment_run_id IS NOT NULL)",
            name=op.f("ck_claims_paid_has_a_run"),
        ),
        sa.CheckConstraint("status <> 'rejected' OR reason_code IS NOT NULL", name=op.f("ck_claims_rejection_reason")),
        sa.CheckConstraint(
            "status NOT IN ('cancelled', 'superseded') OR closed_at IS NOT NULL", name=op.f("ck_claims_closing_time")
        ),
        sa.CheckConstraint(
            "amo_cents + insurer_cents + remainder_cents = price_cents", name=op.f("ck_claims_shares_add_up")
        ),
        sa.CheckConstraint(
            "price_cents >= 0 AND amo_cents >= 0 AND insurer_cents >= 0 AND remainder_cents >= 0",
            name=op.f("ck_claims_amounts_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "approval_id"],
            ["prior_approvals.insurer_id", "prior_approvals.id"],
            name=op.f("fk_claims_insurer_id_approval_id_prior_approvals"),
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"],
            ["beneficiaries.insurer_id", "beneficiaries.id"],
            name=op.f("fk_claims_insurer_id_beneficiary_id_beneficiaries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "check_id"],
            ["rights_checks.insurer_id", "rights_checks.id"],
            name=op.f("fk_claims_insurer_id_check_id_rights_checks"),
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "replaces_id"],
            ["claims.insurer_id", "claims.id"],
            name=op.f("fk_claims_insurer_id_replaces_id_claims"),
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_claims_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.id"], name=op.f("fk_claims_practice_id_practices")),
        sa.ForeignKeyConstraint(
            ["professional_id"], ["professionals.id"], name=op.f("fk_claims_professional_id_professionals")
        ),
        sa.PrimaryKeyConstraint("insurer_id", "id", name=op.f("pk_claims")),
        sa.UniqueConstraint(
            "insurer_id",
            "practice_id",
            "idempotency_key",
            name=op.f("uq_claims_insurer_id_practice_id_idempotency_key"),
        ),
        sa.UniqueConstraint("insurer_id", "replaces_id", name=op.f("uq_claims_insurer_id_replaces_id")),
    )
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.create_index("ix_claims_fingerprint", ["insurer_id", "fingerprint"], unique=False)
        batch_op.create_index("ix_claims_id", ["id"], unique=True)
        batch_op.create_index("ix_claims_practice", ["practice_id", "created_at"], unique=False)
        batch_op.create_index("ix_claims_review", ["insurer_id", "status", "created_at"], unique=False)

    op.create_table(
        "prior_approval_lines",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("approval_id", sa.Uuid(), nullable=False),
        sa.Column("granted_cents", sa.BigInteger(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column(
            "care_domain",
            sa.Enum(
                "PHAR",
                "OPTI",
                "AUDI",
                "DENT",
                "HOSP",
                "CONS",
                "LABO",
                "AUXM",
                "RADI",
                "TRAN",
                name="caredomain",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("act_code", sa.String(length=16), nullable=False),
        sa.Column("care_date", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("brss_cents", sa.Integer(), nullable=False),
        sa.Column("amo_rate_pct", sa.Integer(), nullable=False),
        sa.Column(
            "sante_100_class",
            sa.Enum("A", "B", name="sante100class", native_enum=False, create_constraint=True),
            nullable=True,
        ),
        sa.Column("regulated_price_cents", sa.Integer(), nullable=True),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("amo_cents", sa.Integer(), nullable=False),
        sa.Column("insurer_cents", sa.Integer(), nullable=False),
        sa.Column("remainder_cents", sa.Integer(), nullable=False),
        sa.Column("ceiling_consumed_cents", sa.Integer(), nullable=False),
        sa.Column(
            "limited_by",
            sa.Enum(
                "not_covered",
                "price",
                "class_b_ceiling",
                "yearly_ceiling",
                name="limit",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.CheckConstraint(
            "amo_cents + insurer_cents + remainder_cents = price_cents",
            name=op.f("ck_prior_approval_lines_shares_add_up"),
        ),
        sa.CheckConstraint("amo_rate_pct BETWEEN 0 AND 100", name=op.f("ck_prior_approval_lines_amo_rate_range")),
        sa.CheckConstraint(
            "ceiling_consumed_cents <= insurer_cents", name=op.f("ck_prior_approval_lines_consumed_within_share")
        ),
        sa.CheckConstraint(
            "granted_cents >= 0 AND granted_cents <= insurer_cents",
            name=op.f("ck_prior_approval_lines_granted_within_share"),
        ),
        sa.CheckConstraint("line_no BETWEEN 1 AND 99", name=op.f("ck_prior_approval_lines_line_no_range")),
        sa.CheckConstraint(
            "price_cents = quantity * unit_price_cents",
            name=op.f("ck_prior_approval_lines_price_is_quantity_times_unit"),
        ),
        sa.CheckConstraint("quantity BETWEEN 1 AND 999", name=op.f("ck_prior_approval_lines_quantity_range")),
        sa.CheckConstraint(
            "unit_price_cents >= 0 AND brss_cents >= 0 AND amo_cents >= 0 AND insurer_cents >= 0 "
            "AND remainder_cents >= 0 AND ceiling_consumed_cents >= 0",
            name=op.f("ck_prior_approval_lines_amounts_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "approval_id"],
            ["prior_approvals.insurer_id", "prior_approvals.id"],
            name=op.f("fk_prior_approval_lines_insurer_id_approval_id_prior_approvals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("insurer_id", "approval_id", "line_no", name=op.f("pk_prior_approval_lines")),
    )
    op.create_table(
        "claim_lines",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("claim_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column(
            "care_domain",
            sa.Enum(
                "PHAR",
                "OPTI",
                "AUDI",
                "DENT",
                "HOSP",
                "CONS",
                "LABO",
                "AUXM",
                "RADI",
                "TRAN",
                name="caredomain",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("act_code", sa.String(length=16), nullable=False),
        sa.Column("care_date", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("brss_cents", sa.Integer(), nullable=False),
        sa.Column("amo_rate_pct", sa.Integer(), nullable=False),
        sa.Column(
            "sante_100_class",
            sa.Enum("A", "B", name="sante100class", native_enum=False, create_constraint=True),
            nullable=True,
        ),
        sa.Column("regulated_price_cents", sa.Integer(), nullable=True),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("amo_cents", sa.Integer(), nullable=False),
        sa.Column("insurer_cents", sa.Integer(), nullable=False),
        sa.Column("remainder_cents", sa.Integer(), nullable=False),
        sa.Column("ceiling_consumed_cents", sa.Integer(), nullable=False),
        sa.Column(
            "limited_by",
            sa.Enum(
                "not_covered",
                "price",
                "class_b_ceiling",
                "yearly_ceiling",
                name="limit",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.CheckConstraint(
            "amo_cents + insurer_cents + remainder_cents = price_cents", name=op.f("ck_claim_lines_shares_add_up")
        ),
        sa.CheckConstraint("amo_rate_pct BETWEEN 0 AND 100", name=op.f("ck_claim_lines_amo_rate_range")),
        sa.CheckConstraint(
            "ceiling_consumed_cents <= insurer_cents", name=op.f("ck_claim_lines_consumed_within_share")
        ),
        sa.CheckConstraint("line_no BETWEEN 1 AND 99", name=op.f("ck_claim_lines_line_no_range")),
        sa.CheckConstraint(
            "price_cents = quantity * unit_price_cents", name=op.f("ck_claim_lines_price_is_quantity_times_unit")
        ),
        sa.CheckConstraint("quantity BETWEEN 1 AND 999", name=op.f("ck_claim_lines_quantity_range")),
        sa.CheckConstraint(
            "unit_price_cents >= 0 AND brss_cents >= 0 AND amo_cents >= 0 AND insurer_cents >= 0 "
            "AND remainder_cents >= 0 AND ceiling_consumed_cents >= 0",
            name=op.f("ck_claim_lines_amounts_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "claim_id"],
            ["claims.insurer_id", "claims.id"],
            name=op.f("fk_claim_lines_insurer_id_claim_id_claims"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("insurer_id", "claim_id", "line_no", name=op.f("pk_claim_lines")),
    )
    op.create_table(
        "remittance_lines",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("remittance_id", sa.Uuid(), nullable=False),
        sa.Column("claim_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_remittance_lines_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["insurer_id", "claim_id"],
            ["claims.insurer_id", "claims.id"],
            name=op.f("fk_remittance_lines_insurer_id_claim_id_claims"),
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "remittance_id"],
            ["remittances.insurer_id", "remittances.id"],
            name=op.f("fk_remittance_lines_insurer_id_remittance_id_remittances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"], ["professionals.id"], name=op.f("fk_remittance_lines_professional_id_professionals")
        ),
        sa.PrimaryKeyConstraint("insurer_id", "remittance_id", "claim_id", name=op.f("pk_remittance_lines")),
        sa.UniqueConstraint("insurer_id", "claim_id", name=op.f("uq_remittance_lines_insurer_id_claim_id")),
    )
    enable_tenant_rls(op, *TENANT_TABLES)
    enable_practice_reads(op, *PRACTICE_READ_TABLES)


def downgrade() -> None:
    disable_tenant_rls(op, *TENANT_TABLES)
    for table in reversed(TENANT_TABLES):
        op.drop_table(table)
