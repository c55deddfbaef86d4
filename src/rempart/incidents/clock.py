"""The 72-hour clock of GDPR Art. 33(1): per insurer concerned, time left and what is missing;
alerts at 48 h and 66 h from awareness; the notifications recorded as they are made."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from rempart.db import utcnow
from rempart.detection.models import Alert, AlertKind, Severity
from rempart.detection.service import raise_alert
from rempart.errors import ValidationFailed
from rempart.incidents.models import ActionKind, Incident, IncidentInsurer, IncidentStatus, LettersDecision
from rempart.incidents.service import IncidentNotFound, access_incident, act, insurer_parts
from rempart.insurers.models import Insurer
from rempart.logs import get_logger
from rempart.tenancy import tenant

log = get_logger(__name__)
CLOCK = timedelta(hours=72)
WARNINGS = (timedelta(hours=48), timedelta(hours=66))


@dataclass(frozen=True)
class Clock:
    aware_at: datetime
    deadline: datetime
    elapsed: timedelta
    left: timedelta  # negative once late
    stage: str  # "running", "48h", "66h", "late", "done"


@dataclass(frozen=True)
class InsurerChecklist:
    insurer_id: uuid.UUID
    amc_number: str
    insurer_name: str
    people: int
    records: int
    attempted: int
    clock: Clock
    missing: tuple[str, ...]  # what is still to do for this insurer's notifications
    notice_sent_at: datetime | None
    authority_notified_at: datetime | None
    letters: LettersDecision


def clock_of(incident: Incident, now: datetime, *, done: bool = False) -> Clock:
    deadline = incident.aware_at + CLOCK
    elapsed = now - incident.aware_at
    if done:
        stage = "done"
    elif now >= deadline:
        stage = "late"
    elif elapsed >= WARNINGS[1]:
        stage = "66h"
    elif elapsed >= WARNINGS[0]:
        stage = "48h"
    else:
        stage = "running"
    return Clock(incident.aware_at, deadline, elapsed, deadline - now, stage)


def checklist(
    session: Session, incident: Incident, *, now: datetime, insurer_id: uuid.UUID | None = None
) -> list[InsurerChecklist]:
    """Per insurer concerned: its counts, its clock and what is still missing."""
    result = []
    parts = insurer_parts(session, incident.id, insurer_id=insurer_id)
    insurers = {i.id: i for i in session.scalars(select(Insurer).where(Insurer.id.in_([p.insurer_id for p in parts])))}
    for row in sorted(parts, key=lambda p: insurers[p.insurer_id].amc_number):
        insurer = insurers[row.insurer_id]
        missing = []
        if not incident.measures_taken:
            missing.append("measures taken")
        if not incident.measures_proposed:
            missing.append("measures proposed")
        if row.notice_sent_at is None:
            missing.append("processor's notice to the insurer")
        if row.authority_notified_at is None:
            missing.append("Art. 33 notification filed by the insurer")
        if row.letters is LettersDecision.PENDING and row.people:
            missing.append("the insurer's Art. 34 decision (letters or not)")
        if now >= incident.aware_at + CLOCK and row.authority_notified_at is None and not incident.delay_reason:
            missing.append("reasons for the delay (Art. 33(1))")
        done = row.authority_notified_at is not None
        result.append(
            InsurerChecklist(
                insurer_id=row.insurer_id,
                amc_number=insurer.amc_number,
                insurer_name=insurer.name,
                people=row.people,
                records=row.records,
                attempted=row.attempted,
                clock=clock_of(incident, now, done=done),
                missing=tuple(missing),
                notice_sent_at=row.notice_sent_at,
                authority_notified_at=row.authority_notified_at,
                letters=row.letters,
            )
        )
    return result


def do_raise_deadline_alerts(session: Session, *, now: datetime) -> list[Alert]:
    """At 48 h and at 66 h from awareness, an alert for each open incident whose notifications are
    not all filed (once each: the alert's dedupe key). Run by the app's clock and on every read."""
    raised: list[Alert] = []
    open_incidents = session.scalars(
        select(Incident).where(Incident.status != IncidentStatus.CLOSED, Incident.aware_at <= now - WARNINGS[0])
    ).all()
    for incident in open_incidents:
        pending = sum(1 for p in insurer_parts(session, incident.id) if p.authority_notified_at is None)
        if not pending and incident.facts_computed_at is not None:
            continue
        for mark in WARNINGS:
            if now - incident.aware_at < mark:
                continue
            hours = int(mark.total_seconds() // 3600)
            left = int((CLOCK - mark).total_seconds() // 3600)
            alert = raise_alert(
                session,
                kind=AlertKind.INCIDENT_DEADLINE,
                severity=Severity.HIGH if hours == 48 else Severity.CRITICAL,
                title=f"{incident.reference}: {hours} h since awareness, {left} h left to notify",
                now=now,
                detail={"incident_id": str(incident.id), "hours": hours, "insurers_pending": pending or 0},
                dedupe_key=f"incident:{incident.id}:{hours}h",
            )
            if alert is not None:
                alert.incident_id = incident.id
                raised.append(alert)
    session.commit()
    return raised


def do_record_notification(
    session: Session,
    *,
    incident_id: uuid.UUID,
    insurer_id: uuid.UUID,
    step: ActionKind,
    now: datetime,
    actor_id: uuid.UUID | None,
    letters: LettersDecision | None = None,
) -> IncidentInsurer:
    """The processor's notice sent, the insurer's Art. 33 notification filed, or its Art. 34 decision."""
    incident = access_incident(session, incident_id)
    with tenant(session, insurer_id):
        row = session.get(IncidentInsurer, (insurer_id, incident.id))
        if row is None:
            raise IncidentNotFound("this incident does not concern this insurer")
        if step is ActionKind.NOTICE_SENT:
            row.notice_sent_at = row.notice_sent_at or now
            text = "Processor's notice sent to the insurer"
        elif step is ActionKind.AUTHORITY_NOTIFIED:
            row.authority_notified_at = row.authority_notified_at or now
            text = "The insurer filed its Art. 33 notification"
        elif step is ActionKind.LETTERS_DECIDED and letters is not None and letters is not LettersDecision.PENDING:
            row.letters = letters
            text = "Art. 34: letters to be sent" if letters is LettersDecision.SEND else "Art. 34: letters not required"
        else:
            raise ValidationFailed("not a notification step")
        act(session, incident, step, text, at=now, actor_id=actor_id, insurer_id=insurer_id)
        session.commit()
        return row


class DeadlineWatch:
    """Raises the clock's alerts while the app serves, without waiting for someone to read an
    incident: every ``interval`` seconds, in a thread of its own (alerts are deduplicated, so the
    watches of several app processes raise each alert once)."""

    def __init__(self, sessions: sessionmaker[Session], *, interval: float = 60.0) -> None:
        self.sessions = sessions
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="incident-deadline-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.sessions() as session:
                    do_raise_deadline_alerts(session, now=utcnow())
            except Exception as exc:  # noqa: BLE001 - a failed round is logged; the next one tries again
                log.warning("incident_deadline_watch_failed", error_type=type(exc).__name__)
