"""Request and response bodies of the security console's detection API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from rempart.detection.models import (
    Alert,
    AlertKind,
    AlertStatus,
    Containment,
    ContainmentLevel,
    DetectionEvent,
    EventKind,
    KillSwitch,
    KillSwitchScope,
    Severity,
    SubjectKind,
)
from rempart.fields import Written


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlertOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    kind: AlertKind
    severity: Severity
    status: AlertStatus
    title: str
    subject_kind: SubjectKind | None
    subject_id: uuid.UUID | None
    practice_id: uuid.UUID | None
    signal: str | None
    detail: dict[str, Any]
    insurer_ids: list[uuid.UUID]
    assignee_id: uuid.UUID | None
    acknowledged_by: uuid.UUID | None
    acknowledged_at: datetime | None
    incident_id: uuid.UUID | None

    @classmethod
    def of(cls, alert: Alert, insurer_ids: list[uuid.UUID]) -> AlertOut:
        return cls(
            id=alert.id,
            created_at=alert.created_at,
            updated_at=alert.updated_at,
            kind=alert.kind,
            severity=alert.severity,
            status=alert.status,
            title=alert.title,
            subject_kind=alert.subject_kind,
            subject_id=alert.subject_id,
            practice_id=alert.practice_id,
            signal=alert.signal,
            detail=alert.detail,
            insurer_ids=sorted(insurer_ids),
            assignee_id=alert.assignee_id,
            acknowledged_by=alert.acknowledged_by,
            acknowledged_at=alert.acknowledged_at,
            incident_id=alert.incident_id,
        )


class AlertList(BaseModel):
    """A page of alerts, newest first; ``next`` (also the ``Link`` header) on every page but the last."""

    alerts: list[AlertOut]
    limit: int
    next: str | None = None


class AssignIn(_Strict):
    assignee_id: uuid.UUID = Field(description="a security operator's account")


class IncidentLinkIn(_Strict):
    incident_id: uuid.UUID


# Kept in the record, its line breaks and tabs laid out as spaces.
Reason = Annotated[str, Field(min_length=5, max_length=2000), Written]


class ReasonIn(_Strict):
    reason: Reason = Field(description="why; kept in the record")


class KillSwitchIn(_Strict):
    scope: KillSwitchScope
    target: str = Field(
        min_length=1,
        max_length=64,
        description="a channel (professional_portal, practice_api, back_office), a profession, "
        "or a practice's or insurer's id",
    )
    reason: Reason


class KillSwitchOut(BaseModel):
    id: uuid.UUID
    scope: KillSwitchScope
    target: str
    reason: str
    set_by: uuid.UUID
    set_at: datetime
    cleared_by: uuid.UUID | None
    cleared_at: datetime | None
    clear_reason: str | None
    active: bool

    @classmethod
    def of(cls, switch: KillSwitch) -> KillSwitchOut:
        return cls(
            id=switch.id,
            scope=switch.scope,
            target=switch.target,
            reason=switch.reason,
            set_by=switch.set_by,
            set_at=switch.set_at,
            cleared_by=switch.cleared_by,
            cleared_at=switch.cleared_at,
            clear_reason=switch.clear_reason,
            active=switch.cleared_at is None,
        )


class ContainmentOut(BaseModel):
    subject_kind: SubjectKind
    subject_id: uuid.UUID
    level: ContainmentLevel
    signal: str | None
    practice_id: uuid.UUID | None
    since: datetime
    until: datetime | None
    lifted_at: datetime | None
    lifted_by: uuid.UUID | None
    lift_reason: str | None

    @classmethod
    def of(cls, row: Containment) -> ContainmentOut:
        return cls(
            subject_kind=row.subject_kind,
            subject_id=row.subject_id,
            level=row.level,
            signal=row.signal,
            practice_id=row.practice_id,
            since=row.since,
            until=row.until,
            lifted_at=row.lifted_at,
            lifted_by=row.lifted_by,
            lift_reason=row.lift_reason,
        )


class EventOut(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    kind: EventKind
    level: ContainmentLevel | None
    signal: str | None
    detail: dict[str, Any]
    operator_id: uuid.UUID | None
    reason: str | None

    @classmethod
    def of(cls, event: DetectionEvent) -> EventOut:
        return cls(
            id=event.id,
            occurred_at=event.occurred_at,
            kind=event.kind,
            level=event.level,
            signal=event.signal,
            detail=event.detail,
            operator_id=event.operator_id,
            reason=event.reason,
        )
