"""What the security console reads: alerts, containments and kill switches in words, with the names
of the practices, accounts, software and operators they concern.

Operators see the signal and its figures (a practice never does: ``explain``). Names come from the
records of other domains, read by id, a page at a time (bounded by the lists they name).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.detection import service
from rempart.detection.models import (
    Alert,
    AlertStatus,
    Containment,
    DetectionEvent,
    EventKind,
    KillSwitch,
    KillSwitchScope,
    SubjectKind,
)
from rempart.identity.models import Account, ApiClient
from rempart.insurers.models import Insurer
from rempart.professionals.models import Practice, Professional

ALERTS_SHOWN = 100
PRACTICES_OFFERED = 300  # the kill-switch form's suggestions: the most recent practices


@dataclass(frozen=True)
class Named:
    """Who a record is about: its kind and the name people know it by (``None``: unknown)."""

    kind: str
    id: uuid.UUID | None
    name: str | None


@dataclass(frozen=True)
class AlertView:
    id: uuid.UUID
    created_at: datetime
    kind: str
    severity: str
    status: str
    signal: str | None
    value: Any
    threshold: Any
    subject: Named | None
    practice: Named | None
    assignee: str | None
    assigned_to_me: bool
    incident_id: uuid.UUID | None
    insurer_ids: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class ContainmentView:
    subject: Named
    practice: Named | None
    level: str
    signal: str | None
    since: datetime
    until: datetime | None


@dataclass(frozen=True)
class LadderEvent:
    at: datetime
    kind: str
    subject: Named
    practice: Named | None
    signal: str | None
    reason: str | None
    operator: str | None


@dataclass(frozen=True)
class SwitchView:
    id: uuid.UUID
    scope: str
    target: str
    target_name: str | None  # a practice's or an insurer's name
    reason: str
    set_at: datetime
    set_by: str | None


class Names:
    """Names of the ids a page shows, each kind read once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[tuple[str, uuid.UUID], str | None] = {}

    def load(self, wanted: Iterable[tuple[str, uuid.UUID | None]]) -> None:
        by_kind: dict[str, set[uuid.UUID]] = {}
        for kind, ident in wanted:
            if ident is not None and (kind, ident) not in self._cache:
                by_kind.setdefault(kind, set()).add(ident)
        readers: dict[str, Any] = {
            SubjectKind.PRACTICE.value: (Practice.id, Practice.name),
            SubjectKind.ACCOUNT.value: (Account.id, Account.login),
            SubjectKind.CLIENT.value: (ApiClient.id, ApiClient.name),
            SubjectKind.PROFESSIONAL.value: (Professional.id, Professional.rpps),
            SubjectKind.INSURER.value: (Insurer.id, Insurer.name),
        }
        for kind, ids in by_kind.items():
            for ident in ids:
                self._cache[(kind, ident)] = None
            columns = readers.get(kind)
            if columns is None:
                continue
            id_column, name_column = columns
            for ident, name in self.session.execute(select(id_column, name_column).where(id_column.in_(list(ids)))):
                self._cache[(kind, ident)] = name

    def of(self, kind: str | None, ident: uuid.UUID | None) -> Named | None:
        if kind is None:
            return None
        if ident is not None and (kind, ident) not in self._cache:
            self.load([(kind, ident)])
        return Named(kind, ident, self._cache.get((kind, ident)) if ident is not None else None)


def _kind(value: SubjectKind | None) -> str | None:
    return value.value if value is not None else None


def alert_views(
    session: Session, *, operator_id: uuid.UUID, newer_than: datetime | None = None, limit: int = ALERTS_SHOWN
) -> list[AlertView]:
    """The newest alerts (open and acknowledged first in importance, but in time order), in words."""
    filters = service.AlertFilter(since=newer_than)
    alerts, insurers = service.list_alerts(session, filters=filters, limit=limit, offset=0)
    if newer_than is not None:
        alerts = [a for a in alerts if a.created_at > newer_than]
    names = Names(session)
    names.load(
        [(_kind(a.subject_kind) or "", a.subject_id) for a in alerts]
        + [(SubjectKind.PRACTICE.value, a.practice_id) for a in alerts]
        + [(SubjectKind.ACCOUNT.value, a.assignee_id) for a in alerts]
    )
    return [_alert_view(a, names, operator_id, tuple(insurers.get(a.id, ()))) for a in alerts]


def _alert_view(alert: Alert, names: Names, operator_id: uuid.UUID, insurer_ids: tuple[uuid.UUID, ...]) -> AlertView:
    assignee = names.of(SubjectKind.ACCOUNT.value, alert.assignee_id) if alert.assignee_id else None
    practice = names.of(SubjectKind.PRACTICE.value, alert.practice_id) if alert.practice_id else None
    return AlertView(
        id=alert.id,
        created_at=alert.created_at,
        kind=alert.kind.value,
        severity=alert.severity.value,
        status=alert.status.value,
        signal=alert.signal,
        value=alert.detail.get("value"),
        threshold=alert.detail.get("threshold"),
        subject=names.of(_kind(alert.subject_kind), alert.subject_id),
        practice=practice,
        assignee=assignee.name if assignee else None,
        assigned_to_me=alert.assignee_id == operator_id,
        incident_id=alert.incident_id,
        insurer_ids=insurer_ids,
    )


def open_alert_count(session: Session) -> int:
    alerts, _ = service.list_alerts(
        session, filters=service.AlertFilter(status=AlertStatus.OPEN), limit=ALERTS_SHOWN, offset=0
    )
    return len(alerts)


def containment_views(session: Session, *, now: datetime) -> list[ContainmentView]:
    rows: Sequence[Containment] = service.list_containments(session, now=now, active_only=True)
    names = Names(session)
    names.load(
        [(r.subject_kind.value, r.subject_id) for r in rows]
        + [(SubjectKind.PRACTICE.value, r.practice_id) for r in rows]
    )
    views = []
    for r in rows:
        subject = names.of(r.subject_kind.value, r.subject_id)
        assert subject is not None
        views.append(
            ContainmentView(
                subject=subject,
                practice=names.of(SubjectKind.PRACTICE.value, r.practice_id) if r.practice_id else None,
                level=r.level.value,
                signal=r.signal,
                since=r.since,
                until=r.until,
            )
        )
    return views


_LADDER_KINDS = (EventKind.SLOWED, EventKind.STEP_UP_REQUIRED, EventKind.SUSPENDED, EventKind.LIFTED)


def ladder_events(session: Session, *, now: datetime, days: int = 7, limit: int = 100) -> list[LadderEvent]:
    """The ladder's steps and lifts of the last ``days`` days, newest first."""
    rows = session.scalars(
        select(DetectionEvent)
        .where(DetectionEvent.kind.in_(_LADDER_KINDS), DetectionEvent.occurred_at >= now - timedelta(days=days))
        .order_by(DetectionEvent.occurred_at.desc(), DetectionEvent.id)
        .limit(limit)
    ).all()
    names = Names(session)
    names.load(
        [(e.subject_kind.value, e.subject_id) for e in rows]
        + [(SubjectKind.PRACTICE.value, e.practice_id) for e in rows]
        + [(SubjectKind.ACCOUNT.value, e.operator_id) for e in rows]
    )
    found = []
    for e in rows:
        subject = names.of(e.subject_kind.value, e.subject_id)
        assert subject is not None
        operator = names.of(SubjectKind.ACCOUNT.value, e.operator_id) if e.operator_id else None
        found.append(
            LadderEvent(
                at=e.occurred_at,
                kind=e.kind.value,
                subject=subject,
                practice=names.of(SubjectKind.PRACTICE.value, e.practice_id) if e.practice_id else None,
                signal=e.signal,
                reason=e.reason,
                operator=operator.name if operator else None,
            )
        )
    return found


def switch_views(session: Session) -> list[SwitchView]:
    switches: Sequence[KillSwitch] = service.active_kill_switches(session)
    names = Names(session)
    wanted: list[tuple[str, uuid.UUID | None]] = [(SubjectKind.ACCOUNT.value, s.set_by) for s in switches]
    for s in switches:
        if s.scope in (KillSwitchScope.PRACTICE, KillSwitchScope.INSURER):
            wanted.append((s.scope.value, uuid.UUID(s.target)))
    names.load(wanted)
    views = []
    for s in switches:
        target_name = None
        if s.scope in (KillSwitchScope.PRACTICE, KillSwitchScope.INSURER):
            named = names.of(s.scope.value, uuid.UUID(s.target))
            target_name = named.name if named else None
        setter = names.of(SubjectKind.ACCOUNT.value, s.set_by)
        views.append(
            SwitchView(
                id=s.id,
                scope=s.scope.value,
                target=s.target,
                target_name=target_name,
                reason=s.reason,
                set_at=s.set_at,
                set_by=setter.name if setter else None,
            )
        )
    return views


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


def switch_targets(session: Session) -> dict[str, list[Choice]]:
    """What the kill-switch form offers per scope: practices (the most recent) and insurers by name."""
    practices = session.execute(
        select(Practice.id, Practice.name).order_by(Practice.created_at.desc()).limit(PRACTICES_OFFERED)
    ).all()
    insurers = session.execute(select(Insurer.id, Insurer.name, Insurer.amc_number).order_by(Insurer.name)).all()
    return {
        KillSwitchScope.PRACTICE.value: [Choice(str(i), n) for i, n in practices],
        KillSwitchScope.INSURER.value: [Choice(str(i), f"{n} ({amc})") for i, n, amc in insurers],
    }
