"""audit: access events (partitioned by month on PostgreSQL), checkpoints, break-glass grants

Revision ID: 0004_audit
Revises: 0001_foundation

Written by hand. The access log has no foreign key into any other table: it stands on its own.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import rempart.db

revision = "0004_audit"
down_revision = "0001_foundation"
branch_labels = None
# The application role (created by 0002) must exist before this revision narrows its rights.
depends_on = "0002_identity"

# Months of partitions created ahead; the sealer keeps creating them as time passes.
MONTHS_AHEAD = 12


def _month(day: date, delta: int) -> date:
    index = day.year * 12 + day.month - 1 + delta
    return date(index // 12, index % 12 + 1, 1)


def _uuid(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.Uuid(), nullable=nullable)


PURPOSES = [
    "care_eligibility",
    "care_quote",
    "care_prior_approval",
    "care_billing",
    "claim_management",
    "payment",
    "member_administration",
    "platform_support",
    "self_service",
    "breach_response",
    "transparency",
]
ACTOR_KINDS = ["professional", "practice_software", "insurer_staff", "operator", "beneficiary", "system"]
CHANNELS = [
    "pro_api",
    "pro_portal",
    "fhir",
    "backoffice",
    "insurer_api",
    "beneficiary_portal",
    "security_console",
    "cli",
    "batch",
]
OUTCOMES = ["disclosed", "miss", "refused", "error"]


def _partial(condition: str) -> dict[str, Any]:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # PostgreSQL: a partitioned table's primary key must hold the partition key.
    key = ["id", "occurred_at"] if postgres else ["id"]
    op.create_table(
        "access_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False, autoincrement=True),
        _uuid("event_id", nullable=False),
        sa.Column("occurred_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(*PURPOSES, name="purpose", native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column(
            "actor_kind",
            sa.Enum(*ACTOR_KINDS, name="actorkind", native_enum=False, create_constraint=True, length=20),
            nullable=False,
        ),
        _uuid("actor_id"),
        _uuid("practice_id"),
        _uuid("professional_id"),
        sa.Column("profession", sa.String(length=24), nullable=True),
        sa.Column(
            "channel",
            sa.Enum(*CHANNELS, name="channel", native_enum=False, create_constraint=True, length=20),
            nullable=False,
        ),
        sa.Column("device", sa.String(length=128), nullable=True),
        sa.Column("address", sa.String(length=45), nullable=True),
        _uuid("insurer_id"),
        _uuid("beneficiary_id"),
        sa.Column("fields", sa.String(length=400), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(*OUTCOMES, name="outcome", native_enum=False, create_constraint=True, length=10),
            nullable=False,
        ),
        sa.Column("reference", sa.String(length=64), nullable=True),
        _uuid("break_glass_id"),
        sa.Column("seal_seq", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "outcome = 'disclosed' OR fields = ''", name=op.f("ck_access_events_nothing_disclosed_unless_disclosed")
        ),
        sa.CheckConstraint("seal_seq IS NULL OR seal_seq >= 0", name=op.f("ck_access_events_seal_seq_non_negative")),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_access_events")),
        postgresql_partition_by="RANGE (occurred_at)",
    )
    partitions = ["access_events"]
    if postgres:
        op.execute("CREATE TABLE access_events_default PARTITION OF access_events DEFAULT")
        partitions.append("access_events_default")
        this_month = datetime.now(UTC).date().replace(day=1)
        for delta in range(-1, MONTHS_AHEAD + 1):
            start, end = _month(this_month, delta), _month(this_month, delta + 1)
            op.execute(
                f"CREATE TABLE access_events_p{start:%Y%m} PARTITION OF access_events "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
            partitions.append(f"access_events_p{start:%Y%m}")
    op.create_index(
        "ix_access_events_actor_time", "access_events", ["actor_id", "occurred_at"], **_partial("actor_id IS NOT NULL")
    )
    op.create_index(
        "ix_access_events_practice_time",
        "access_events",
        ["practice_id", "occurred_at"],
        **_partial("practice_id IS NOT NULL"),
    )
    op.create_index(
        "ix_access_events_beneficiary_time",
        "access_events",
        ["beneficiary_id", "occurred_at"],
        **_partial("beneficiary_id IS NOT NULL"),
    )
    op.create_index("ix_access_events_insurer_time", "access_events", ["insurer_id", "occurred_at"])
    op.create_index("ix_access_events_unsealed", "access_events", ["id"], **_partial("seal_seq IS NULL"))
    # Unique where the database can promise it (SQLite); on PostgreSQL a unique index of a
    # partitioned table must hold the partition key, so ``verify`` checks uniqueness itself.
    op.create_index(
        "ix_access_events_seal_seq",
        "access_events",
        ["seal_seq"],
        unique=not postgres,
        **_partial("seal_seq IS NOT NULL"),
    )

    op.create_table(
        "audit_checkpoints",
        sa.Column("number", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sealed_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_occurred_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_occurred_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("head", sa.Text(), nullable=False),
        sa.Column("head_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("leaves", sa.LargeBinary(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("number >= 1", name=op.f("ck_audit_checkpoints_number_positive")),
        sa.CheckConstraint("count >= 1", name=op.f("ck_audit_checkpoints_count_positive")),
        sa.CheckConstraint("first_seq >= 0", name=op.f("ck_audit_checkpoints_first_seq_non_negative")),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_audit_checkpoints")),
    )
    op.create_index("ix_audit_checkpoints_sealed_at", "audit_checkpoints", ["sealed_at"])
    op.create_index("ix_audit_checkpoints_first_seq", "audit_checkpoints", ["first_seq"])
    op.create_index("ix_audit_checkpoints_first_occurred_at", "audit_checkpoints", ["first_occurred_at"])

    op.create_table(
        "audit_break_glass_grants",
        _uuid("id", nullable=False),
        _uuid("insurer_id", nullable=False),
        _uuid("beneficiary_id", nullable=False),
        _uuid("requested_by", nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("ticket", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "requested",
                "approved",
                "refused",
                "revoked",
                name="breakglassstatus",
                native_enum=False,
                create_constraint=True,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("requested_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        _uuid("decided_by"),
        sa.Column("decided_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "duration_minutes BETWEEN 1 AND 240", name=op.f("ck_audit_break_glass_grants_duration_bounded")
        ),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by <> requested_by", name=op.f("ck_audit_break_glass_grants_second_operator")
        ),
        sa.CheckConstraint(
            "status <> 'approved' OR expires_at IS NOT NULL",
            name=op.f("ck_audit_break_glass_grants_approved_has_expiry"),
        ),
        sa.CheckConstraint(
            "(status = 'requested') = (decided_by IS NULL)", name=op.f("ck_audit_break_glass_grants_decision_recorded")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_break_glass_grants")),
    )
    op.create_index("ix_audit_break_glass_grants_insurer", "audit_break_glass_grants", ["insurer_id", "requested_at"])

    op.create_table(
        "audit_insurer_policies",
        _uuid("insurer_id", nullable=False),
        sa.Column("show_staff_names", sa.Boolean(), nullable=False),
        sa.Column("updated_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("insurer_id", name=op.f("pk_audit_insurer_policies")),
    )
    op.create_table(
        "audit_sealer",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("locked_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("partitions_checked_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_sealer_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_sealer")),
    )
    op.execute("INSERT INTO audit_sealer (id) VALUES (1)")
    if postgres:
        for statement in _append_only_sql(_app_role(), partitions):
            op.execute(statement)


def _app_role() -> str:
    from rempart.config import get_settings
    from rempart.tenancy import DEFAULT_APP_ROLE

    return get_settings().database_app_role or DEFAULT_APP_ROLE


def _append_only_sql(role: str, partitions: list[str]) -> list[str]:
    """What the application role may do to the log: add events and checkpoints, and give an
    event its sealed number; never rewrite nor delete either (the owner keeps those rights, for
    retention). Partitions are reachable by name too, so each gets the same treatment."""
    statements = []
    for table in partitions:
        statements += [
            f'REVOKE UPDATE, DELETE, TRUNCATE ON "{table}" FROM "{role}"',
            f'GRANT UPDATE (seal_seq) ON "{table}" TO "{role}"',
        ]
    statements += [
        f'REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoints FROM "{role}"',
        f'REVOKE TRUNCATE ON audit_break_glass_grants FROM "{role}"',
    ]
    return statements


def downgrade() -> None:
    op.drop_table("audit_sealer")
    op.drop_table("audit_insurer_policies")
    op.drop_index("ix_audit_break_glass_grants_insurer", table_name="audit_break_glass_grants")
    op.drop_table("audit_break_glass_grants")
    op.drop_index("ix_audit_checkpoints_first_occurred_at", table_name="audit_checkpoints")
    op.drop_index("ix_audit_checkpoints_first_seq", table_name="audit_checkpoints")
    op.drop_index("ix_audit_checkpoints_sealed_at", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    # Dropping the parent drops its partitions and indexes.
    op.drop_table("access_events")
