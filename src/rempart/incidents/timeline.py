"""An incident's timeline: its own actions, and what happened meanwhile that belongs to it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from rempart.attestations.models import AttestationKey
from rempart.detection.models import DetectionEvent, EventKind, KillSwitch
from rempart.incidents.models import ActionKind, Incident, IncidentAction
from rempart.incidents.service import scope_sets
from rempart.insurers.models import Insurer
from rempart.tenancy import tenant


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    text: str
    insurer_id: uuid.UUID | None = None


_LADDER = {
    EventKind.SLOWED: "slowed down",
    EventKind.STEP_UP_REQUIRED: "asked to confirm with a passkey",
    EventKind.SUSPENDED: "suspended, every session and token revoked",
    EventKind.LIFTED: "containment lifted",
}


def timeline(session: Session, incident: Incident, *, insurer_id: uuid.UUID | None = None) -> list[TimelineEntry]:
    """The incident's own actions, and what happened meanwhile that belongs to it: the containment
    of the actors in its scope, kill switches and attestation key revocations since detection."""
    since = incident.detected_at - timedelta(days=1)
    until = incident.closed_at
    entries = [
        TimelineEntry(a.at, a.kind.value, a.text, a.insurer_id)
        for a in session.scalars(select(IncidentAction).where(IncidentAction.incident_id == incident.id))
        if insurer_id is None or a.insurer_id in (None, insurer_id)
    ]
    if insurer_id is None:
        subjects = {
            v for s in scope_sets(session, incident) for v in (*s.actor_ids, *s.practice_ids, *s.professional_ids)
        }
        if subjects:
            for event in session.scalars(
                select(DetectionEvent).where(
                    DetectionEvent.kind.in_(list(_LADDER)),
                    or_(DetectionEvent.subject_id.in_(subjects), DetectionEvent.practice_id.in_(subjects)),
                    DetectionEvent.occurred_at >= since,
                )
            ):
                if until is None or event.occurred_at <= until:
                    what = f"{event.subject_kind.value} {event.subject_id}: {_LADDER[event.kind]}"
                    entries.append(TimelineEntry(event.occurred_at, "containment", what))
    for switch in session.scalars(select(KillSwitch).where(KillSwitch.set_at >= since)):
        if until is None or switch.set_at <= until:
            entries.append(
                TimelineEntry(switch.set_at, "kill_switch", f"Kill switch on: {switch.scope.value} {switch.target}")
            )
        if switch.cleared_at is not None and (until is None or switch.cleared_at <= until):
            entries.append(
                TimelineEntry(
                    switch.cleared_at, "kill_switch", f"Kill switch off: {switch.scope.value} {switch.target}"
                )
            )
    for insurer in session.scalars(select(Insurer)):
        if insurer_id is not None and insurer.id != insurer_id:
            continue
        with tenant(session, insurer.id):
            for key in session.scalars(
                select(AttestationKey).where(
                    AttestationKey.insurer_id == insurer.id, AttestationKey.revoked_at.is_not(None)
                )
            ):
                assert key.revoked_at is not None
                if key.revoked_at >= since and (until is None or key.revoked_at <= until):
                    entries.append(
                        TimelineEntry(
                            key.revoked_at,
                            "key_revoked",
                            f"Attestation key {key.kid} of insurer {insurer.amc_number} revoked",
                            insurer.id,
                        )
                    )
    # At the same moment (a script, a fast operator), the incident's steps keep their natural order.
    order = {kind.value: rank for rank, kind in enumerate(ActionKind)}
    return sorted(entries, key=lambda e: (e.at, order.get(e.kind, len(order)), e.text))
