"""The database side of detection: containment records, alerts, kill switches, lifts.

Plain functions, session passed in. The engine calls ``record_step`` and ``raise_alert`` in a
transaction of its own (a containment must be recorded even when the request that triggered it is
refused and rolled back); operators' actions run in the request's session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rempart.detection.models import (
    Alert,
    AlertInsurer,
    AlertKind,
    AlertStatus,
    Containment,
    ContainmentLevel,
    DetectionEvent,
    EventKind,
    KillChannel,
    KillSwitch,
    KillSwitchScope,
    Severity,
    SubjectKind,
)
from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.insurers.models import Insurer
from rempart.pagination import Cursor, Page, keyset_page

if TYPE_CHECKING:
    from rempart.detection.engine import DetectionEngine

MIN_REASON = 5
_EVENT_OF_LEVEL = {
    ContainmentLevel.SLOW: EventKind.SLOWED,
    ContainmentLevel.STEP_UP: EventKind.STEP_UP_REQUIRED,
    ContainmentLevel.SUSPENDED: EventKind.SUSPENDED,
}


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if len(text) < MIN_REASON:
        raise ValidationFailed("give a reason (at least 5 characters)")
    if len(text) > 2000:
        raise ValidationFailed("a reason is at most 2000 characters")
    return text


# -- containment ------------------------------------------------------------------------------


def record_step(
    session: Session,
    *,
    kind: SubjectKind,
    subject_id: uuid.UUID,
    practice_id: uuid.UUID | None,
    level: ContainmentLevel,
    until: datetime | None,
    signal: str,
    detail: dict[str, Any],
    now: datetime,
) -> DetectionEvent:
    """A subject reached a step of the ladder: the event, and where the subject now stands."""
    event = DetectionEvent(
        occurred_at=now,
        kind=_EVENT_OF_LEVEL[level],
        subject_kind=kind,
        subject_id=subject_id,
        practice_id=practice_id,
        level=level,
        signal=signal,
        detail=detail,
    )
    session.add(event)
    row = session.get(Containment, (kind, subject_id))
    if row is None:
        row = Containment(subject_kind=kind, subject_id=subject_id)
        session.add(row)
    row.level, row.signal, row.practice_id = level, signal, practice_id
    row.since, row.until, row.updated_at = now, (None if level is ContainmentLevel.SUSPENDED else until), now
    row.lifted_at = row.lifted_by = row.lift_reason = None
    session.flush()
    return event


def record_step_up(session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, now: datetime) -> None:
    session.add(
        DetectionEvent(occurred_at=now, kind=EventKind.STEP_UP_COMPLETED, subject_kind=kind, subject_id=subject_id)
    )
    row = session.get(Containment, (kind, subject_id))
    if row is not None and row.level is ContainmentLevel.STEP_UP:
        row.level, row.until, row.updated_at = ContainmentLevel.NORMAL, None, now
    session.flush()


def record_fail_closed(session: Session, *, now: datetime) -> None:
    session.add(DetectionEvent(occurred_at=now, kind=EventKind.FAIL_CLOSED, subject_kind=SubjectKind.PLATFORM))
    session.flush()


def list_containments(session: Session, *, now: datetime, active_only: bool = True) -> Sequence[Containment]:
    query = select(Containment).order_by(Containment.updated_at.desc())
    rows = session.scalars(query).all()
    if not active_only:
        return rows
    return [
        r
        for r in rows
        if r.lifted_at is None and r.level is not ContainmentLevel.NORMAL and (r.until is None or r.until > now)
    ]


@dataclass(frozen=True)
class PracticeContainment:
    """Where a practice stands now: its own containment and its accounts', professionals' and
    clients' (detection's records), and the kill switches that cut it off."""

    containments: Sequence[Containment]
    kill_switches: Sequence[KillSwitch]

    @property
    def normal(self) -> bool:
        return not self.containments and not self.kill_switches


def practice_containment(
    session: Session, *, practice_id: uuid.UUID, professions: Iterable[str], now: datetime
) -> PracticeContainment:
    """The containments in force now for the practice or anyone acting for it (the engine records
    every step with the acting practice), and the active kill switches covering the practice, its
    professions or a professional channel. Insurer switches are left out: they cut one insurer's
    checks, not the practice."""
    rows = session.scalars(
        select(Containment)
        .where(
            (Containment.practice_id == practice_id)
            | ((Containment.subject_kind == SubjectKind.PRACTICE) & (Containment.subject_id == practice_id)),
            Containment.lifted_at.is_(None),
            Containment.level != ContainmentLevel.NORMAL,
        )
        .order_by(Containment.since.desc(), Containment.subject_kind, Containment.subject_id)
    ).all()
    active = [r for r in rows if r.until is None or r.until > now]
    wanted = {
        (KillSwitchScope.PRACTICE, str(practice_id)),
        (KillSwitchScope.CHANNEL, KillChannel.PROFESSIONAL_PORTAL.value),
        (KillSwitchScope.CHANNEL, KillChannel.PRACTICE_API.value),
        (KillSwitchScope.CHANNEL, KillChannel.FHIR.value),
        *((KillSwitchScope.PROFESSION, str(p)) for p in professions),
    }
    switches = [s for s in active_kill_switches(session) if (s.scope, s.target) in wanted]
    return PracticeContainment(containments=active, kill_switches=switches)


def lift_containment(
    *,
    session: Session,
    engine: DetectionEngine,
    kind: SubjectKind,
    subject_id: uuid.UUID,
    reason: str,
    operator_id: uuid.UUID,
) -> Containment:
    """An operator lifts a containment: the subject starts afresh (its windows are forgotten)."""
    text = _reason(reason)
    row = session.get(Containment, (kind, subject_id))
    if row is None or row.lifted_at is not None or row.level is ContainmentLevel.NORMAL:
        raise NotFound("no containment to lift for this subject")
    now = engine.clock.now()
    was_suspended = row.level is ContainmentLevel.SUSPENDED
    row.level, row.until, row.updated_at = ContainmentLevel.NORMAL, None, now
    row.lifted_at, row.lifted_by, row.lift_reason = now, operator_id, text
    session.add(
        DetectionEvent(
            occurred_at=now,
            kind=EventKind.LIFTED,
            subject_kind=kind,
            subject_id=subject_id,
            practice_id=row.practice_id,
            level=ContainmentLevel.NORMAL,
            operator_id=operator_id,
            reason=text,
            detail={"was": "suspended" if was_suspended else "contained"},
        )
    )
    if was_suspended:
        engine.hooks.reinstate(session, kind=kind, subject_id=subject_id, reason=text, now=now)
    engine.hooks.step_recorded(
        session, kind=kind, subject_id=subject_id, level=ContainmentLevel.NORMAL, signal="lifted", actor=None, now=now
    )
    session.flush()
    engine.forget(kind=kind, subject_id=subject_id)
    return row


def subject_events(
    session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, limit: int = 100
) -> Sequence[DetectionEvent]:
    return session.scalars(
        select(DetectionEvent)
        .where(DetectionEvent.subject_kind == kind, DetectionEvent.subject_id == subject_id)
        .order_by(DetectionEvent.occurred_at.desc(), DetectionEvent.id)
        .limit(limit)
    ).all()


# -- alerts -----------------------------------------------------------------------------------


def raise_alert(
    session: Session,
    *,
    kind: AlertKind,
    severity: Severity,
    title: str,
    now: datetime,
    subject_kind: SubjectKind | None = None,
    subject_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    signal: str | None = None,
    detail: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    insurer_ids: Iterable[uuid.UUID] = (),
) -> Alert | None:
    """Store an alert; ``None`` when one with the same ``dedupe_key`` exists (raised elsewhere)."""
    if dedupe_key and session.scalar(select(Alert.id).where(Alert.dedupe_key == dedupe_key)) is not None:
        return None
    alert = Alert(
        created_at=now,
        updated_at=now,
        kind=kind,
        severity=severity,
        status=AlertStatus.OPEN,
        title=title[:200],
        subject_kind=subject_kind,
        subject_id=subject_id,
        practice_id=practice_id,
        signal=signal,
        detail=detail or {},
        dedupe_key=dedupe_key,
    )
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        # Another process raised the same alert between our check and our insert.
        return None
    wanted = set(insurer_ids)
    if wanted:
        known = session.scalars(select(Insurer.id).where(Insurer.id.in_(wanted))).all()
        session.add_all(AlertInsurer(insurer_id=i, alert_id=alert.id) for i in known)
    session.add(
        DetectionEvent(
            occurred_at=now,
            kind=EventKind.ALERT_RAISED,
            subject_kind=subject_kind or SubjectKind.PLATFORM,
            subject_id=subject_id,
            practice_id=practice_id,
            signal=signal,
            detail={"alert_id": str(alert.id), "severity": severity.value},
        )
    )
    session.flush()
    return alert


@dataclass(frozen=True)
class AlertFilter:
    status: AlertStatus | None = None
    severity: Severity | None = None
    kind: AlertKind | None = None
    subject_kind: SubjectKind | None = None
    subject_id: uuid.UUID | None = None
    practice_id: uuid.UUID | None = None
    insurer_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    incident_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


_NEWEST_FIRST = (Alert.created_at.desc(), Alert.id.desc())


def _alerts(filters: AlertFilter, ids: Sequence[uuid.UUID] | None = None) -> Select[Alert]:
    query = select(Alert)
    if ids is not None:
        query = query.where(Alert.id.in_(list(ids)))
    f = filters
    for column, value in (
        (Alert.status, f.status),
        (Alert.severity, f.severity),
        (Alert.kind, f.kind),
        (Alert.subject_kind, f.subject_kind),
        (Alert.subject_id, f.subject_id),
        (Alert.practice_id, f.practice_id),
        (Alert.assignee_id, f.assignee_id),
        (Alert.incident_id, f.incident_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.since is not None:
        query = query.where(Alert.created_at >= f.since)
    if f.until is not None:
        query = query.where(Alert.created_at < f.until)
    if f.insurer_id is not None:
        query = query.where(Alert.id.in_(select(AlertInsurer.alert_id).where(AlertInsurer.insurer_id == f.insurer_id)))
    return query


def _insurers_of(session: Session, alerts: Sequence[Alert]) -> dict[uuid.UUID, list[uuid.UUID]]:
    insurers: dict[uuid.UUID, list[uuid.UUID]] = {a.id: [] for a in alerts}
    if alerts:
        for link in session.scalars(select(AlertInsurer).where(AlertInsurer.alert_id.in_(list(insurers)))):
            insurers[link.alert_id].append(link.insurer_id)
    return insurers


def list_alerts(
    session: Session,
    *,
    filters: AlertFilter,
    limit: int = 50,
    offset: int = 0,
    ids: Sequence[uuid.UUID] | None = None,
) -> tuple[Sequence[Alert], dict[uuid.UUID, list[uuid.UUID]]]:
    """Alerts, newest first, with the insurers each concerns (the console's lists and one alert;
    the API pages with ``alerts_page``)."""
    alerts = session.scalars(_alerts(filters, ids).order_by(*_NEWEST_FIRST).limit(limit).offset(offset)).all()
    return alerts, _insurers_of(session, alerts)


def alerts_page(
    session: Session, *, filters: AlertFilter, limit: int = 50, cursor: Cursor | None = None
) -> tuple[Page[Alert], dict[uuid.UUID, list[uuid.UUID]]]:
    """Alerts, newest first, a page at a time (after ``cursor``), with the insurers each concerns."""
    page = keyset_page(
        session, _alerts(filters), at=Alert.created_at, row_id=Alert.id, cursor=cursor, limit=limit, descending=True
    )
    return page, _insurers_of(session, page.items)


def access_alert(session: Session, *, alert_id: uuid.UUID, insurer_id: uuid.UUID | None = None) -> Alert:
    """An alert, or "not found"; an insurer's staff reach only alerts concerning their insurer."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("no such alert")
    if insurer_id is not None and session.get(AlertInsurer, (insurer_id, alert_id)) is None:
        raise NotFound("no such alert")
    return alert


def acknowledge_alert(*, session: Session, alert_id: uuid.UUID, operator_id: uuid.UUID, now: datetime) -> Alert:
    alert = access_alert(session, alert_id=alert_id)
    if alert.status is AlertStatus.CLOSED:
        raise Conflict("this alert is closed")
    if alert.status is AlertStatus.OPEN:
        alert.status, alert.acknowledged_by, alert.acknowledged_at = AlertStatus.ACKNOWLEDGED, operator_id, now
        alert.updated_at = now
    session.flush()
    return alert


def assign_alert(
    *, session: Session, alert_id: uuid.UUID, assignee_id: uuid.UUID, operator_id: uuid.UUID, now: datetime
) -> Alert:
    alert = access_alert(session, alert_id=alert_id)
    if alert.status is AlertStatus.CLOSED:
        raise Conflict("this alert is closed")
    alert.assignee_id, alert.updated_at = assignee_id, now
    if alert.status is AlertStatus.OPEN:
        # Taking an alert in hand acknowledges it.
        alert.status, alert.acknowledged_by, alert.acknowledged_at = AlertStatus.ACKNOWLEDGED, operator_id, now
    session.flush()
    return alert


def link_incident(
    *, session: Session, alert_id: uuid.UUID, incident_id: uuid.UUID, operator_id: uuid.UUID, now: datetime
) -> Alert:
    alert = access_alert(session, alert_id=alert_id)
    if alert.incident_id is not None and alert.incident_id != incident_id:
        raise Conflict("this alert is already linked to another incident")
    alert.incident_id, alert.updated_at = incident_id, now
    if alert.status is AlertStatus.OPEN:
        alert.status, alert.acknowledged_by, alert.acknowledged_at = AlertStatus.ACKNOWLEDGED, operator_id, now
    session.flush()
    return alert


def close_alert(*, session: Session, alert_id: uuid.UUID, operator_id: uuid.UUID, now: datetime) -> Alert:
    alert = access_alert(session, alert_id=alert_id)
    if alert.status is AlertStatus.OPEN:
        alert.acknowledged_by, alert.acknowledged_at = operator_id, now
    alert.status, alert.updated_at = AlertStatus.CLOSED, now
    session.flush()
    return alert


# -- kill switches ----------------------------------------------------------------------------


def _target(session: Session, scope: KillSwitchScope, target: str) -> str:
    from rempart.detection.thresholds import PROFESSIONS

    value = target.strip()
    if scope is KillSwitchScope.CHANNEL:
        if value not in {c.value for c in KillChannel}:
            raise ValidationFailed("a channel is one of: " + ", ".join(c.value for c in KillChannel))
        return value
    if scope is KillSwitchScope.PROFESSION:
        if value not in PROFESSIONS:
            raise ValidationFailed("unknown profession")
        return value
    try:
        ident = uuid.UUID(value)
    except ValueError:
        raise ValidationFailed(f"a {scope.value} is named by its id") from None
    if scope is KillSwitchScope.INSURER and session.get(Insurer, ident) is None:
        raise NotFound("no such insurer")
    return str(ident)


def active_kill_switches(session: Session) -> Sequence[KillSwitch]:
    return session.scalars(
        select(KillSwitch).where(KillSwitch.cleared_at.is_(None)).order_by(KillSwitch.set_at, KillSwitch.id)
    ).all()


def set_kill_switch(
    *,
    session: Session,
    scope: KillSwitchScope,
    target: str,
    reason: str,
    operator_id: uuid.UUID,
    now: datetime,
) -> KillSwitch:
    """Cut a channel, profession, practice or insurer off. Commit, then ``engine.announce_kill_switches()``."""
    text = _reason(reason)
    value = _target(session, scope, target)
    existing = session.scalar(
        select(KillSwitch).where(KillSwitch.scope == scope, KillSwitch.target == value, KillSwitch.cleared_at.is_(None))
    )
    if existing is not None:
        raise Conflict("this kill switch is already on")
    switch = KillSwitch(scope=scope, target=value, reason=text, set_by=operator_id, set_at=now)
    session.add(switch)
    session.flush()
    session.add(
        DetectionEvent(
            occurred_at=now,
            kind=EventKind.KILL_SWITCH_SET,
            subject_kind=SubjectKind.KILL_SWITCH,
            subject_id=switch.id,
            operator_id=operator_id,
            reason=text,
            detail={"scope": scope.value, "target": value},
        )
    )
    session.flush()
    return switch


def clear_kill_switch(
    *, session: Session, switch_id: uuid.UUID, reason: str, operator_id: uuid.UUID, now: datetime
) -> KillSwitch:
    text = _reason(reason)
    switch = session.get(KillSwitch, switch_id)
    if switch is None:
        raise NotFound("no such kill switch")
    if switch.cleared_at is not None:
        raise Conflict("this kill switch is already off")
    switch.cleared_at, switch.cleared_by, switch.clear_reason = now, operator_id, text
    session.add(
        DetectionEvent(
            occurred_at=now,
            kind=EventKind.KILL_SWITCH_CLEARED,
            subject_kind=SubjectKind.KILL_SWITCH,
            subject_id=switch.id,
            operator_id=operator_id,
            reason=text,
            detail={"scope": switch.scope.value, "target": switch.target},
        )
    )
    session.flush()
    return switch


# -- units of work of the security console: each commits its change and its event -----------------


def do_acknowledge_alert(*, session: Session, alert_id: uuid.UUID, operator_id: uuid.UUID, now: datetime) -> Alert:
    alert = acknowledge_alert(session=session, alert_id=alert_id, operator_id=operator_id, now=now)
    session.commit()
    return alert


def do_assign_alert(
    *, session: Session, alert_id: uuid.UUID, assignee_id: uuid.UUID, operator_id: uuid.UUID, now: datetime
) -> Alert:
    alert = assign_alert(session=session, alert_id=alert_id, assignee_id=assignee_id, operator_id=operator_id, now=now)
    session.commit()
    return alert


def do_link_incident(
    *, session: Session, alert_id: uuid.UUID, incident_id: uuid.UUID, operator_id: uuid.UUID, now: datetime
) -> Alert:
    alert = link_incident(session=session, alert_id=alert_id, incident_id=incident_id, operator_id=operator_id, now=now)
    session.commit()
    return alert


def do_close_alert(*, session: Session, alert_id: uuid.UUID, operator_id: uuid.UUID, now: datetime) -> Alert:
    alert = close_alert(session=session, alert_id=alert_id, operator_id=operator_id, now=now)
    session.commit()
    return alert


def do_lift_containment(
    *,
    session: Session,
    engine: DetectionEngine,
    kind: SubjectKind,
    subject_id: uuid.UUID,
    reason: str,
    operator_id: uuid.UUID,
) -> Containment:
    row = lift_containment(
        session=session, engine=engine, kind=kind, subject_id=subject_id, reason=reason, operator_id=operator_id
    )
    session.commit()
    return row


def do_set_kill_switch(
    *,
    session: Session,
    engine: DetectionEngine,
    scope: KillSwitchScope,
    target: str,
    reason: str,
    operator_id: uuid.UUID,
    now: datetime,
) -> KillSwitch:
    """Set, commit, then tell this process at once and every other within a second."""
    switch = set_kill_switch(
        session=session, scope=scope, target=target, reason=reason, operator_id=operator_id, now=now
    )
    session.commit()
    engine.announce_kill_switches(active_kill_switches(session))
    return switch


def do_clear_kill_switch(
    *,
    session: Session,
    engine: DetectionEngine,
    switch_id: uuid.UUID,
    reason: str,
    operator_id: uuid.UUID,
    now: datetime,
) -> KillSwitch:
    switch = clear_kill_switch(session=session, switch_id=switch_id, reason=reason, operator_id=operator_id, now=now)
    session.commit()
    engine.announce_kill_switches(active_kill_switches(session))
    return switch
