"""detection: containment events and states, alerts, kill switches

Revision ID: 0005_detection
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rempart.db

revision = "0005_detection"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "containment",
                "signal",
                "beneficiary_spread",
                "aggregate",
                "counter_store_unreachable",
                name="alertkind",
                native_enum=False,
                create_constraint=True,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column(
            "severity",
            sa.Enum("low", "medium", "high", "critical", name="severity", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("open", "acknowledged", "closed", name="alertstatus", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column(
            "subject_kind",
            sa.Enum(
                "account",
                "client",
                "professional",
                "practice",
                "insurer",
                "platform",
                "beneficiary",
                "kill_switch",
                name="subjectkind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("practice_id", sa.Uuid(), nullable=True),
        sa.Column("signal", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("acknowledged_by", sa.Uuid(), nullable=True),
        sa.Column("acknowledged_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "status = 'open' OR (acknowledged_by IS NOT NULL AND acknowledged_at IS NOT NULL)",
            name=op.f("ck_alerts_acknowledged_by_someone"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_alerts_dedupe_key")),
    )
    op.create_index("ix_alerts_status_created", "alerts", ["status", "created_at"], unique=False)
    op.create_table(
        "containments",
        sa.Column(
            "subject_kind",
            sa.Enum(
                "account",
                "client",
                "professional",
                "practice",
                "insurer",
                "platform",
                "beneficiary",
                "kill_switch",
                name="subjectkind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "normal",
                "slow",
                "step_up",
                "suspended",
                name="containmentlevel",
                native_enum=False,
                create_constraint=True,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("signal", sa.String(length=40), nullable=True),
        sa.Column("practice_id", sa.Uuid(), nullable=True),
        sa.Column("since", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.Uuid(), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "level != 'suspended' OR until IS NULL", name=op.f("ck_containments_suspension_until_lifted")
        ),
        sa.CheckConstraint(
            "(lifted_at IS NULL) = (lifted_by IS NULL) AND (lifted_at IS NULL) = (lift_reason IS NULL)",
            name=op.f("ck_containments_lift_is_complete"),
        ),
        sa.PrimaryKeyConstraint("subject_kind", "subject_id", name=op.f("pk_containments")),
    )
    op.create_table(
        "detection_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "slowed",
                "step_up_required",
                "suspended",
                "step_up_completed",
                "lifted",
                "alert_raised",
                "kill_switch_set",
                "kill_switch_cleared",
                "fail_closed",
                name="eventkind",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "subject_kind",
            sa.Enum(
                "account",
                "client",
                "professional",
                "practice",
                "insurer",
                "platform",
                "beneficiary",
                "kill_switch",
                name="subjectkind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("practice_id", sa.Uuid(), nullable=True),
        sa.Column(
            "level",
            sa.Enum(
                "normal",
                "slow",
                "step_up",
                "suspended",
                name="containmentlevel",
                native_enum=False,
                create_constraint=True,
                length=10,
            ),
            nullable=True,
        ),
        sa.Column("signal", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("operator_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind NOT IN ('lifted', 'kill_switch_set', 'kill_switch_cleared') "
            "OR (operator_id IS NOT NULL AND reason IS NOT NULL AND length(reason) >= 5)",
            name=op.f("ck_detection_events_operator_actions_have_reason"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_detection_events")),
    )
    op.create_index(
        "ix_detection_events_subject", "detection_events", ["subject_kind", "subject_id", "occurred_at"], unique=False
    )
    op.create_table(
        "kill_switches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "scope",
            sa.Enum(
                "channel",
                "profession",
                "practice",
                "insurer",
                name="killswitchscope",
                native_enum=False,
                create_constraint=True,
                length=12,
            ),
            nullable=False,
        ),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by", sa.Uuid(), nullable=False),
        sa.Column("set_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cleared_by", sa.Uuid(), nullable=True),
        sa.Column("cleared_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("clear_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(cleared_at IS NULL) = (cleared_by IS NULL) AND (cleared_at IS NULL) = (clear_reason IS NULL)",
            name=op.f("ck_kill_switches_clear_is_complete"),
        ),
        sa.CheckConstraint("length(reason) >= 5", name=op.f("ck_kill_switches_reason_given")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kill_switches")),
    )
    op.create_index(
        "uq_kill_switches_active_target",
        "kill_switches",
        ["scope", "target"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    op.create_table(
        "alert_insurers",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_insurers_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_alert_insurers_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("insurer_id", "alert_id", name=op.f("pk_alert_insurers")),
    )
    op.create_index("ix_alert_insurers_alert", "alert_insurers", ["alert_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alert_insurers_alert", table_name="alert_insurers")
    op.drop_table("alert_insurers")
    op.drop_index("uq_kill_switches_active_target", table_name="kill_switches")
    op.drop_table("kill_switches")
    op.drop_index("ix_detection_events_subject", table_name="detection_events")
    op.drop_table("detection_events")
    op.drop_table("containments")
    op.drop_index("ix_alerts_status_created", table_name="alerts")
    op.drop_table("alerts")
