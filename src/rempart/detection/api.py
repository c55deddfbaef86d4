"""The security console's detection API: alerts, containments, kill switches.

Security operators read and handle alerts, lift containments and set kill switches; an insurer's
staff read the alerts concerning their insurer. Every operator action names its reason.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from rempart.detection import service
from rempart.detection.deps import DetectionDep, GuardedStaffCaller
from rempart.detection.models import AlertKind, AlertStatus, Severity, SubjectKind
from rempart.detection.schemas import (
    AlertList,
    AlertOut,
    AssignIn,
    ContainmentOut,
    EventOut,
    IncidentLinkIn,
    KillSwitchIn,
    KillSwitchOut,
    ReasonIn,
)
from rempart.errors import ValidationFailed
from rempart.fields import UtcDatetime
from rempart.identity.accounts import roles_of
from rempart.identity.deps import AnyCaller, requires
from rempart.identity.permissions import Permission, Role
from rempart.identity.principal import Principal
from rempart.pagination import Cursor
from rempart.web.deps import SessionDep
from rempart.web.pagination import CursorParam, next_link, paged_json

router = APIRouter(prefix="/api/v1", tags=["detection"])


def _operator(caller: Principal) -> uuid.UUID:
    assert caller.account_id is not None  # security permissions belong to human accounts
    return caller.account_id


def _one(session: Session, alert_id: uuid.UUID) -> AlertOut:
    alerts, insurers = service.list_alerts(session, filters=service.AlertFilter(), limit=1, offset=0, ids=[alert_id])
    return AlertOut.of(alerts[0], insurers[alert_id])


def _alert_page(
    request: Request, session: Session, *, filters: service.AlertFilter, limit: int, cursor: str | None
) -> Response:
    page, insurers = service.alerts_page(session, filters=filters, limit=limit, cursor=Cursor.decode(cursor))
    link = next_link(request, page.next)
    alerts = [AlertOut.of(a, insurers[a.id]) for a in page.items]
    return paged_json(AlertList(alerts=alerts, limit=limit, next=link), link)


# -- alerts -----------------------------------------------------------------------------------------


@router.get("/alerts", dependencies=[requires(Permission.SECURITY_ALERT_READ)], response_model=AlertList)
def list_alerts(
    *,
    request: Request,
    caller: AnyCaller,
    session: SessionDep,
    status: AlertStatus | None = None,
    severity: Severity | None = None,
    kind: AlertKind | None = None,
    subject_kind: SubjectKind | None = None,
    subject_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    insurer_id: uuid.UUID | None = None,
    assignee_id: uuid.UUID | None = None,
    incident_id: uuid.UUID | None = None,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = CursorParam,
) -> Response:
    """Alerts, newest first, filtered, a page at a time (``next``)."""
    filters = service.AlertFilter(
        status=status,
        severity=severity,
        kind=kind,
        subject_kind=subject_kind,
        subject_id=subject_id,
        practice_id=practice_id,
        insurer_id=insurer_id,
        assignee_id=assignee_id,
        incident_id=incident_id,
        since=since,
        until=until,
    )
    return _alert_page(request, session, filters=filters, limit=limit, cursor=cursor)


@router.get("/alerts/{alert_id}", dependencies=[requires(Permission.SECURITY_ALERT_READ)], response_model=AlertOut)
def get_alert(alert_id: uuid.UUID, caller: AnyCaller, session: SessionDep) -> AlertOut:
    service.access_alert(session, alert_id=alert_id)
    return _one(session, alert_id)


@router.post(
    "/alerts/{alert_id}/acknowledge", dependencies=[requires(Permission.SECURITY_ALERT_MANAGE)], response_model=AlertOut
)
def acknowledge_alert(alert_id: uuid.UUID, caller: AnyCaller, session: SessionDep, detection: DetectionDep) -> AlertOut:
    service.do_acknowledge_alert(
        session=session, alert_id=alert_id, operator_id=_operator(caller), now=detection.clock.now()
    )
    return _one(session, alert_id)


@router.post(
    "/alerts/{alert_id}/assign", dependencies=[requires(Permission.SECURITY_ALERT_MANAGE)], response_model=AlertOut
)
def assign_alert(
    alert_id: uuid.UUID, body: AssignIn, caller: AnyCaller, session: SessionDep, detection: DetectionDep
) -> AlertOut:
    if Role.SECURITY_OPERATOR not in roles_of(session, body.assignee_id):
        raise ValidationFailed("an alert is assigned to a security operator")
    service.do_assign_alert(
        session=session,
        alert_id=alert_id,
        assignee_id=body.assignee_id,
        operator_id=_operator(caller),
        now=detection.clock.now(),
    )
    return _one(session, alert_id)


@router.post(
    "/alerts/{alert_id}/incident", dependencies=[requires(Permission.SECURITY_ALERT_MANAGE)], response_model=AlertOut
)
def link_incident(
    alert_id: uuid.UUID, body: IncidentLinkIn, caller: AnyCaller, session: SessionDep, detection: DetectionDep
) -> AlertOut:
    service.do_link_incident(
        session=session,
        alert_id=alert_id,
        incident_id=body.incident_id,
        operator_id=_operator(caller),
        now=detection.clock.now(),
    )
    return _one(session, alert_id)


@router.post(
    "/alerts/{alert_id}/close", dependencies=[requires(Permission.SECURITY_ALERT_MANAGE)], response_model=AlertOut
)
def close_alert(alert_id: uuid.UUID, caller: AnyCaller, session: SessionDep, detection: DetectionDep) -> AlertOut:
    service.do_close_alert(session=session, alert_id=alert_id, operator_id=_operator(caller), now=detection.clock.now())
    return _one(session, alert_id)


@router.get(
    "/insurers/{insurer_id}/alerts",
    dependencies=[requires(Permission.INSURER_INCIDENT_READ)],
    response_model=AlertList,
)
def insurer_alerts(
    *,
    request: Request,
    insurer_id: uuid.UUID,
    caller: GuardedStaffCaller,
    session: SessionDep,
    status: AlertStatus | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = CursorParam,
) -> Response:
    """Alerts concerning this insurer's members, newest first, a page at a time (``next``); another
    insurer's id answers "not found"."""
    filters = service.AlertFilter(status=status, insurer_id=caller.insurer_id)
    return _alert_page(request, session, filters=filters, limit=limit, cursor=cursor)


# -- containments -----------------------------------------------------------------------------------


@router.get(
    "/containments", dependencies=[requires(Permission.SECURITY_ALERT_READ)], response_model=list[ContainmentOut]
)
def list_containments(
    caller: AnyCaller, session: SessionDep, detection: DetectionDep, active: bool = True
) -> list[ContainmentOut]:
    rows = service.list_containments(session, now=detection.clock.now(), active_only=active)
    return [ContainmentOut.of(r) for r in rows]


@router.get(
    "/containments/{subject_kind}/{subject_id}/events",
    dependencies=[requires(Permission.SECURITY_EVENT_READ)],
    response_model=list[EventOut],
)
def containment_events(
    subject_kind: SubjectKind, subject_id: uuid.UUID, caller: AnyCaller, session: SessionDep
) -> list[EventOut]:
    return [EventOut.of(e) for e in service.subject_events(session, kind=subject_kind, subject_id=subject_id)]


@router.post(
    "/containments/{subject_kind}/{subject_id}/lift",
    dependencies=[requires(Permission.SECURITY_ACCOUNT_CONTAIN)],
    response_model=ContainmentOut,
)
def lift_containment(
    *,
    subject_kind: SubjectKind,
    subject_id: uuid.UUID,
    body: ReasonIn,
    caller: AnyCaller,
    session: SessionDep,
    detection: DetectionDep,
) -> ContainmentOut:
    """Lift a slow-down, a refusal or a suspension; the subject's counters start afresh."""
    row = service.do_lift_containment(
        session=session,
        engine=detection,
        kind=subject_kind,
        subject_id=subject_id,
        reason=body.reason,
        operator_id=_operator(caller),
    )
    return ContainmentOut.of(row)


# -- kill switches ----------------------------------------------------------------------------------


@router.get(
    "/kill-switches", dependencies=[requires(Permission.SECURITY_ALERT_READ)], response_model=list[KillSwitchOut]
)
def list_kill_switches(caller: AnyCaller, session: SessionDep) -> list[KillSwitchOut]:
    return [KillSwitchOut.of(s) for s in service.active_kill_switches(session)]


@router.post(
    "/kill-switches",
    dependencies=[requires(Permission.SECURITY_KILL_SWITCH_MANAGE)],
    response_model=KillSwitchOut,
    status_code=201,
)
def set_kill_switch(
    body: KillSwitchIn, caller: AnyCaller, session: SessionDep, detection: DetectionDep
) -> KillSwitchOut:
    """Cut a channel, a profession, a practice or an insurer off; every process follows within a second."""
    switch = service.do_set_kill_switch(
        session=session,
        engine=detection,
        scope=body.scope,
        target=body.target,
        reason=body.reason,
        operator_id=_operator(caller),
        now=detection.clock.now(),
    )
    return KillSwitchOut.of(switch)


@router.post(
    "/kill-switches/{switch_id}/clear",
    dependencies=[requires(Permission.SECURITY_KILL_SWITCH_MANAGE)],
    response_model=KillSwitchOut,
)
def clear_kill_switch(
    switch_id: uuid.UUID, body: ReasonIn, caller: AnyCaller, session: SessionDep, detection: DetectionDep
) -> KillSwitchOut:
    switch = service.do_clear_kill_switch(
        session=session,
        engine=detection,
        switch_id=switch_id,
        reason=body.reason,
        operator_id=_operator(caller),
        now=detection.clock.now(),
    )
    return KillSwitchOut.of(switch)
