"""Incidents: opened by an operator or from an alert, scoped, turned into facts by the access log,
followed on the 72-hour clock of GDPR Art. 33(1), with a timeline.

Each mutation is one ``do_*`` function that commits its own unit of work with its record (the
incident's own timeline; the access log for the facts computed, which disclose who was affected).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from rempart.audit.disclosures import Operation
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.audit.service import Actor, record_access
from rempart.detection.models import Alert
from rempart.detection.service import link_incident
from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.incidents.facts import LogStatus, ScopeFacts, ScopeSet
from rempart.incidents.models import (
    ActionKind,
    Incident,
    IncidentAction,
    IncidentInsurer,
    IncidentScope,
    IncidentStatus,
    IncidentSubject,
    LettersDecision,
)
from rempart.incidents.scope import compute_scope
from rempart.insurers.models import Insurer
from rempart.tenancy import tenant

NATURES = ("availability", "confidentiality", "integrity")


class IncidentNotFound(NotFound):
    slug = "incident-not-found"
    title = "Incident not found"


def _nature(nature: Iterable[str]) -> str:
    chosen = sorted(set(nature))
    if not chosen or any(n not in NATURES for n in chosen):
        raise ValidationFailed("an incident's nature is one or more of: confidentiality, integrity, availability")
    return ",".join(chosen)


def act(
    session: Session,
    incident: Incident,
    kind: ActionKind,
    text: str,
    *,
    at: datetime,
    actor_id: uuid.UUID | None = None,
    insurer_id: uuid.UUID | None = None,
) -> None:
    session.add(
        IncidentAction(incident_id=incident.id, at=at, kind=kind, text=text, actor_id=actor_id, insurer_id=insurer_id)
    )


def access_incident(session: Session, incident_id: uuid.UUID) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentNotFound("no incident with this id")
    return incident


def _reference(session: Session, now: datetime) -> str:
    year = now.year
    count = session.scalar(select(func.count()).select_from(Incident).where(Incident.reference.like(f"INC-{year}-%")))
    return f"INC-{year}-{(count or 0) + 1:04d}"


def do_open_incident(
    session: Session,
    *,
    title: str,
    nature: Iterable[str],
    contact: str,
    operator_id: uuid.UUID | None,
    now: datetime,
    description: str = "",
    detected_at: datetime | None = None,
    aware_at: datetime | None = None,
    alert_id: uuid.UUID | None = None,
    keys_compromised: bool = False,
) -> Incident:
    """Open an incident; from an alert, detection time is the alert's and the alert is linked."""
    if not title.strip() or len(title) > 200:
        raise ValidationFailed("an incident has a title of 1 to 200 characters")
    if not contact.strip() or len(contact) > 300:
        raise ValidationFailed("an incident names its contact point (1 to 300 characters)")
    alert = None
    if alert_id is not None:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise NotFound("no alert with this id")
        detected_at = detected_at or alert.created_at
    detected = detected_at or now
    aware = aware_at or now
    if aware < detected:
        raise ValidationFailed("awareness cannot come before detection")
    if aware > now or detected > now:
        raise ValidationFailed("detection and awareness are not in the future")
    incident = Incident(
        id=uuid.uuid4(),
        reference=_reference(session, now),
        title=title.strip(),
        description=description.strip(),
        nature=_nature(nature),
        status=IncidentStatus.OPEN,
        detected_at=detected,
        aware_at=aware,
        contact=contact.strip(),
        measures_taken=[],
        measures_proposed=[],
        keys_compromised=keys_compromised,
        alert_id=alert_id,
        opened_by=operator_id,
        created_at=now,
    )
    session.add(incident)
    session.flush()
    act(session, incident, ActionKind.OPENED, f"Incident opened: {incident.title}", at=now, actor_id=operator_id)
    if alert is not None and operator_id is not None:
        link_incident(session=session, alert_id=alert.id, incident_id=incident.id, operator_id=operator_id, now=now)
    session.commit()
    return incident


def do_update_incident(
    session: Session,
    *,
    incident_id: uuid.UUID,
    operator_id: uuid.UUID | None,
    now: datetime,
    measures_taken: Sequence[str] | None = None,
    measures_proposed: Sequence[str] | None = None,
    delay_reason: str | None = None,
    description: str | None = None,
    keys_compromised: bool | None = None,
    status: IncidentStatus | None = None,
    note: str | None = None,
) -> Incident:
    incident = access_incident(session, incident_id)
    if incident.status is IncidentStatus.CLOSED:
        raise Conflict("this incident is closed")
    if measures_taken is not None:
        incident.measures_taken = [m.strip() for m in measures_taken if m.strip()]
    if measures_proposed is not None:
        incident.measures_proposed = [m.strip() for m in measures_proposed if m.strip()]
    if delay_reason is not None:
        incident.delay_reason = delay_reason.strip() or None
    if description is not None:
        incident.description = description.strip()
    if keys_compromised is not None:
        incident.keys_compromised = keys_compromised
    if note:
        act(session, incident, ActionKind.NOTE, note.strip(), at=now, actor_id=operator_id)
    if status is IncidentStatus.CONTAINED and incident.status is IncidentStatus.OPEN:
        incident.status, incident.contained_at = IncidentStatus.CONTAINED, now
        act(session, incident, ActionKind.CONTAINED, "Compromised access cut off", at=now, actor_id=operator_id)
    elif status is IncidentStatus.CLOSED:
        incident.status, incident.closed_at = IncidentStatus.CLOSED, now
        act(session, incident, ActionKind.CLOSED, "Incident closed", at=now, actor_id=operator_id)
    session.commit()
    return incident


def insurer_parts(
    session: Session, incident_id: uuid.UUID, *, insurer_id: uuid.UUID | None = None
) -> list[IncidentInsurer]:
    """The incident's rows per insurer concerned. They sit behind the tenant wall, so an operator's
    session (bound to no insurer) reads them one insurer at a time, as the wall requires."""
    wanted = [insurer_id] if insurer_id is not None else list(session.scalars(select(Insurer.id)))
    parts = []
    for each in wanted:
        with tenant(session, each):
            row = session.scalar(
                select(IncidentInsurer).where(
                    IncidentInsurer.insurer_id == each, IncidentInsurer.incident_id == incident_id
                )
            )
        if row is not None:
            parts.append(row)
    return parts


def scope_sets(session: Session, incident: Incident) -> list[ScopeSet]:
    rows = session.scalars(
        select(IncidentScope).where(IncidentScope.incident_id == incident.id).order_by(IncidentScope.added_at)
    )
    return [
        ScopeSet(
            since=row.since,
            until=row.until,
            actor_ids=frozenset(uuid.UUID(v) for v in row.actor_ids),
            practice_ids=frozenset(uuid.UUID(v) for v in row.practice_ids),
            professional_ids=frozenset(uuid.UUID(v) for v in row.professional_ids),
            label=row.label,
        )
        for row in rows
    ]


def do_add_scope(
    session: Session, *, incident_id: uuid.UUID, scope: ScopeSet, operator_id: uuid.UUID | None, now: datetime
) -> IncidentScope:
    """Widen the scope with one more set of compromised actors over a window."""
    incident = access_incident(session, incident_id)
    if incident.status is IncidentStatus.CLOSED:
        raise Conflict("this incident is closed")
    if scope.since > now:
        raise ValidationFailed("a scope's window starts in the past")
    row = IncidentScope(
        incident_id=incident.id,
        label=scope.label[:200],
        since=scope.since,
        until=scope.until,
        actor_ids=sorted(str(v) for v in scope.actor_ids),
        practice_ids=sorted(str(v) for v in scope.practice_ids),
        professional_ids=sorted(str(v) for v in scope.professional_ids),
        added_at=now,
        added_by=operator_id,
    )
    session.add(row)
    count = len(scope.actor_ids) + len(scope.practice_ids) + len(scope.professional_ids)
    act(
        session,
        incident,
        ActionKind.SCOPE_ADDED,
        f"Scope widened: {scope.label or 'compromised access'} ({count} compromised, "
        f"{scope.since.isoformat()} to {scope.until.isoformat()})",
        at=now,
        actor_id=operator_id,
    )
    session.commit()
    return row


def do_compute_facts(
    session: Session,
    *,
    incident_id: uuid.UUID,
    operator_id: uuid.UUID | None,
    now: datetime,
    log: LogStatus | None = None,
) -> ScopeFacts:
    """Compute the scope's facts from the access log and keep them: per insurer its counts, per
    person what was seen. Recomputed whole each time, so a wider scope or a later call is exact."""
    incident = access_incident(session, incident_id)
    sets = scope_sets(session, incident)
    if not sets:
        raise Conflict("the incident has no scope yet: add the compromised actors and their window")
    facts = compute_scope(session, sets=sets, now=now, log=log)
    kept = {row.insurer_id: row for row in insurer_parts(session, incident.id)}
    for insurer_id in kept:
        with tenant(session, insurer_id):
            session.execute(
                delete(IncidentSubject).where(
                    IncidentSubject.insurer_id == insurer_id, IncidentSubject.incident_id == incident.id
                )
            )
    for found in facts.insurers:
        with tenant(session, found.insurer_id):
            row = kept.pop(found.insurer_id, None) or IncidentInsurer(
                insurer_id=found.insurer_id, incident_id=incident.id, letters=LettersDecision.PENDING
            )
            row.people, row.records, row.attempted = found.people, found.records, len(found.attempted)
            row.counts = {
                "fields": {k.value: v for k, v in found.people_per_field().items()},
                "channels": {k.value: v for k, v in found.people_per_channel().items()},
                "unattributed_attempts": found.unattributed_attempts,
            }
            row.computed_at = now
            session.add(row)
            session.flush()
            session.add_all(
                [
                    IncidentSubject(
                        insurer_id=found.insurer_id,
                        incident_id=incident.id,
                        beneficiary_id=p.beneficiary_id,
                        disclosed=True,
                        fields=",".join(sorted(f.value for f in p.fields)),
                        channels=",".join(sorted(c.value for c in p.channels)),
                        records=p.records,
                        first_seen=p.first_seen,
                        last_seen=p.last_seen,
                    )
                    for p in found.disclosed
                ]
                + [
                    IncidentSubject(
                        insurer_id=found.insurer_id,
                        incident_id=incident.id,
                        beneficiary_id=a.beneficiary_id,
                        disclosed=False,
                        fields="",
                        channels=",".join(sorted(c.value for c in a.channels)),
                        records=a.attempts,
                    )
                    for a in found.attempted
                ]
            )
            session.flush()
    for gone in kept.values():  # the scope no longer reaches this insurer's members
        with tenant(session, gone.insurer_id):
            gone.people = gone.records = gone.attempted = 0
            gone.counts, gone.computed_at = {}, now
    incident.facts_computed_at = now
    incident.log_verified = log.verified if log else None
    incident.log_problem = log.problem if log else None
    act(
        session,
        incident,
        ActionKind.FACTS_COMPUTED,
        f"Facts computed from the access log: {facts.people} people disclosed over {len(facts.insurers)} "
        f"insurers, {facts.events_examined} events examined"
        + ("" if log is None else "; access log verified" if log.verified else f"; ACCESS LOG FAILS: {log.problem}"),
        at=now,
        actor_id=operator_id,
    )
    # Working out who was affected reads the access log about each insurer's members: recorded in
    # each insurer's log like any other reading (once per insurer, naming the incident).
    for found in facts.insurers:
        record_access(
            session,
            operation=Operation.INCIDENT_SCOPE,
            actor=Actor(ActorKind.OPERATOR, id=operator_id) if operator_id else Actor(ActorKind.SYSTEM),
            channel=Channel.SECURITY_CONSOLE if operator_id else Channel.CLI,
            outcome=Outcome.DISCLOSED,
            insurer_id=found.insurer_id,
            reference=incident.reference,
            occurred_at=now,
        )
    session.commit()
    return facts


# -- who was affected: the insurer's part, and the person's own -------------------------------------


@dataclass(frozen=True)
class MyIncident:
    """What the beneficiary's portal answers: were you affected, and what of yours was seen."""

    reference: str
    title: str
    aware_at: datetime
    disclosed: bool
    fields: tuple[str, ...]
    channels: tuple[str, ...]
    first_seen: datetime | None
    last_seen: datetime | None
    records: int


def incidents_of_beneficiary(session: Session, *, insurer_id: uuid.UUID, beneficiary_id: uuid.UUID) -> list[MyIncident]:
    with tenant(session, insurer_id):
        rows = session.execute(
            select(IncidentSubject, Incident)
            .join(Incident, Incident.id == IncidentSubject.incident_id)
            .where(IncidentSubject.insurer_id == insurer_id, IncidentSubject.beneficiary_id == beneficiary_id)
            .order_by(Incident.aware_at.desc())
        )
        return [
            MyIncident(
                reference=incident.reference,
                title=incident.title,
                aware_at=incident.aware_at,
                disclosed=subject.disclosed,
                fields=tuple(f for f in subject.fields.split(",") if f),
                channels=tuple(c for c in subject.channels.split(",") if c),
                first_seen=subject.first_seen,
                last_seen=subject.last_seen,
                records=subject.records,
            )
            for subject, incident in rows
        ]


def incidents_of_insurer(session: Session, *, insurer_id: uuid.UUID) -> list[Incident]:
    """The incidents that concern this insurer's members (its staff see these, their own part)."""
    with tenant(session, insurer_id):
        ids = list(session.scalars(select(IncidentInsurer.incident_id).where(IncidentInsurer.insurer_id == insurer_id)))
    if not ids:
        return []
    return list(session.scalars(select(Incident).where(Incident.id.in_(ids)).order_by(Incident.aware_at.desc())))


def recent_incidents(session: Session, *, limit: int = 200) -> list[Incident]:
    return list(session.scalars(select(Incident).order_by(Incident.aware_at.desc()).limit(limit)))
