"""Detection's records: containment steps, current containments, alerts, kill switches.

These are platform records (a practice, an account or a client is not owned by one insurer), so they
carry no ``insurer_id`` key, except ``alert_insurers`` which says which insurers an alert concerns
(the insurer's staff see those alerts). Ids of other domains' rows (accounts, clients, practices,
operators, incidents) are kept as plain UUIDs: detection must keep working, and keep its record,
whatever happens to them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, new_id, str_enum, utcnow


class SubjectKind(StrEnum):
    ACCOUNT = "account"
    CLIENT = "client"
    PROFESSIONAL = "professional"
    PRACTICE = "practice"
    INSURER = "insurer"
    PLATFORM = "platform"
    BENEFICIARY = "beneficiary"
    KILL_SWITCH = "kill_switch"


class ContainmentLevel(StrEnum):
    NORMAL = "normal"
    SLOW = "slow"
    STEP_UP = "step_up"  # portal: passkey step-up; API: checks refused
    SUSPENDED = "suspended"


class EventKind(StrEnum):
    SLOWED = "slowed"
    STEP_UP_REQUIRED = "step_up_required"
    SUSPENDED = "suspended"
    STEP_UP_COMPLETED = "step_up_completed"
    LIFTED = "lifted"
    ALERT_RAISED = "alert_raised"
    KILL_SWITCH_SET = "kill_switch_set"
    KILL_SWITCH_CLEARED = "kill_switch_cleared"
    FAIL_CLOSED = "fail_closed"


class DetectionEvent(Base):
    """One step of the ladder, a lift, a kill switch: append-only."""

    __tablename__ = "detection_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind, length=20))
    subject_kind: Mapped[SubjectKind] = mapped_column(str_enum(SubjectKind, length=12))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    practice_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    level: Mapped[ContainmentLevel | None] = mapped_column(str_enum(ContainmentLevel, length=10), nullable=True)
    signal: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Counts and thresholds only: never a beneficiary, a NIR or a name.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    operator_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_detection_events_subject", "subject_kind", "subject_id", "occurred_at"),
        CheckConstraint(
            "kind NOT IN ('lifted', 'kill_switch_set', 'kill_switch_cleared') "
            "OR (operator_id IS NOT NULL AND reason IS NOT NULL AND length(reason) >= 5)",
            name="operator_actions_have_reason",
        ),
    )


class Containment(Base):
    """Where a subject stands on the ladder now (Redis holds the working copy; this is the record)."""

    __tablename__ = "containments"

    subject_kind: Mapped[SubjectKind] = mapped_column(str_enum(SubjectKind, length=12), primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    level: Mapped[ContainmentLevel] = mapped_column(str_enum(ContainmentLevel, length=10))
    signal: Mapped[str | None] = mapped_column(String(40), nullable=True)
    practice_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # None: until lifted
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    lift_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        CheckConstraint(
            "(lifted_at IS NULL) = (lifted_by IS NULL) AND (lifted_at IS NULL) = (lift_reason IS NULL)",
            name="lift_is_complete",
        ),
        CheckConstraint("level != 'suspended' OR until IS NULL", name="suspension_until_lifted"),
    )


class AlertKind(StrEnum):
    CONTAINMENT = "containment"  # an account or client was suspended
    SIGNAL = "signal"  # a signal reached its notice threshold
    BENEFICIARY_SPREAD = "beneficiary_spread"  # one beneficiary checked by many practices
    AGGREGATE = "aggregate"  # insurer-wide or platform-wide anomaly
    COUNTER_STORE_UNREACHABLE = "counter_store_unreachable"
    INCIDENT_DEADLINE = "incident_deadline"  # 48 h and 66 h into an incident's 72-hour clock


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[AlertKind] = mapped_column(str_enum(AlertKind, length=30))
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, length=8))
    status: Mapped[AlertStatus] = mapped_column(str_enum(AlertStatus, length=12), default=AlertStatus.OPEN)
    title: Mapped[str] = mapped_column(String(200))
    subject_kind: Mapped[SubjectKind | None] = mapped_column(str_enum(SubjectKind, length=12), nullable=True)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    practice_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    signal: Mapped[str | None] = mapped_column(String(40), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # One alert per subject, signal and day: a signal that stays high does not flood the console.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    incident_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)

    __table_args__ = (
        Index("ix_alerts_status_created", "status", "created_at"),
        CheckConstraint(
            "status = 'open' OR (acknowledged_by IS NOT NULL AND acknowledged_at IS NOT NULL)",
            name="acknowledged_by_someone",
        ),
    )


class AlertInsurer(Base):
    """An insurer concerned by an alert: its members were checked by the contained subject."""

    __tablename__ = "alert_insurers"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        Index("ix_alert_insurers_alert", "alert_id"),
    )


class KillSwitchScope(StrEnum):
    CHANNEL = "channel"
    PROFESSION = "profession"
    PRACTICE = "practice"
    INSURER = "insurer"


class KillChannel(StrEnum):
    PROFESSIONAL_PORTAL = "professional_portal"
    PRACTICE_API = "practice_api"
    FHIR = "fhir"  # the FHIR facade: practice software too (the practice API's switch cuts it as well)
    BACK_OFFICE = "back_office"


class KillSwitch(Base):
    """A channel, profession, practice or insurer cut off by a security operator, until cleared."""

    __tablename__ = "kill_switches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    scope: Mapped[KillSwitchScope] = mapped_column(str_enum(KillSwitchScope, length=12))
    target: Mapped[str] = mapped_column(String(64))  # a channel, a profession or an id
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[uuid.UUID] = mapped_column()
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cleared_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    clear_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        # At most one active switch per target.
        Index(
            "uq_kill_switches_active_target",
            "scope",
            "target",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
        CheckConstraint("length(reason) >= 5", name="reason_given"),
        CheckConstraint(
            "(cleared_at IS NULL) = (cleared_by IS NULL) AND (cleared_at IS NULL) = (clear_reason IS NULL)",
            name="clear_is_complete",
        ),
    )
