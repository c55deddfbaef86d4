"""An insurer's breach-response bundle: the documents drafted from the facts kept for it, the
export recorded in its access log and in the incident's timeline."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.audit.disclosures import DataField, Operation
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.audit.service import Actor, record_access
from rempart.incidents.documents import IncidentBrief, bundle
from rempart.incidents.facts import AttemptFacts, InsurerFacts, PersonFacts
from rempart.incidents.models import ActionKind, Incident, IncidentInsurer, IncidentSubject
from rempart.incidents.scope import cards_of
from rempart.incidents.service import IncidentNotFound, access_incident, act
from rempart.incidents.timeline import timeline
from rempart.insurers.models import Insurer
from rempart.tenancy import tenant


def brief_of(session: Session, incident: Incident, *, insurer_id: uuid.UUID | None = None) -> IncidentBrief:
    notice = None
    if insurer_id is not None:
        with tenant(session, insurer_id):
            row = session.get(IncidentInsurer, (insurer_id, incident.id))
            notice = row.notice_sent_at if row else None
    return IncidentBrief(
        reference=incident.reference,
        title=incident.title,
        nature=frozenset(incident.nature.split(",")),
        description=incident.description,
        detected_at=incident.detected_at,
        aware_at=incident.aware_at,
        contained_at=incident.contained_at,
        contact=incident.contact,
        measures_taken=tuple(incident.measures_taken),
        measures_proposed=tuple(incident.measures_proposed),
        timeline=tuple((e.at, e.text) for e in timeline(session, incident, insurer_id=insurer_id)),
        delay_reason=incident.delay_reason,
        notice_sent_at=notice,
        keys_compromised=incident.keys_compromised,
    )


def kept_facts(session: Session, incident: Incident, insurer_id: uuid.UUID) -> InsurerFacts:
    """The insurer's facts as last computed (what was reviewed is what is drafted)."""
    insurer = session.get_one(Insurer, insurer_id)
    with tenant(session, insurer_id):
        row = session.get(IncidentInsurer, (insurer_id, incident.id))
        if row is None:
            raise IncidentNotFound("this incident does not concern this insurer")
        subjects = session.scalars(
            select(IncidentSubject).where(
                IncidentSubject.insurer_id == insurer_id, IncidentSubject.incident_id == incident.id
            )
        ).all()
    cards = cards_of(session, insurer_id, [s.beneficiary_id for s in subjects])
    disclosed, attempted = [], []
    for s in subjects:
        member_number, birth_rank = cards.get(s.beneficiary_id, ("?", 1))
        channels = frozenset(Channel(c) for c in s.channels.split(",") if c)
        if s.disclosed:
            assert s.first_seen is not None
            assert s.last_seen is not None
            disclosed.append(
                PersonFacts(
                    beneficiary_id=s.beneficiary_id,
                    member_number=member_number,
                    birth_rank=birth_rank,
                    fields=frozenset(DataField(f) for f in s.fields.split(",") if f),
                    channels=channels,
                    records=s.records,
                    first_seen=s.first_seen,
                    last_seen=s.last_seen,
                )
            )
        else:
            attempted.append(AttemptFacts(s.beneficiary_id, member_number, birth_rank, s.records, channels))
    order = lambda p: (p.member_number, p.birth_rank, str(p.beneficiary_id))  # noqa: E731
    return InsurerFacts(
        insurer_id=insurer_id,
        amc_number=insurer.amc_number,
        insurer_name=insurer.name,
        disclosed=tuple(sorted(disclosed, key=order)),
        attempted=tuple(sorted(attempted, key=order)),
        records=row.records,
        unattributed_attempts=int(row.counts.get("unattributed_attempts", 0)),
    )


def do_export_bundle(
    session: Session,
    *,
    incident_id: uuid.UUID,
    insurer_id: uuid.UUID,
    now: datetime,
    actor: Actor,
    channel: Channel,
    device: str | None = None,
    address: str | None = None,
) -> tuple[str, bytes]:
    """The insurer's zip (documents in French and English, letters, recipients, manifest); the
    export is recorded before it is handed out (its letters name the people affected)."""
    incident = access_incident(session, incident_id)
    facts = kept_facts(session, incident, insurer_id)
    archive = bundle(brief_of(session, incident, insurer_id=insurer_id), facts, now=now)
    record_access(
        session,
        operation=Operation.INCIDENT_LETTERS,
        actor=actor,
        channel=channel,
        outcome=Outcome.DISCLOSED,
        insurer_id=insurer_id,
        device=device,
        address=address,
        reference=incident.reference,
        occurred_at=now,
    )
    act(
        session,
        incident,
        ActionKind.EXPORTED,
        f"Breach-response bundle exported for insurer {facts.amc_number} ({facts.people} letters)",
        at=now,
        actor_id=actor.id if actor.kind is not ActorKind.SYSTEM else None,
        insurer_id=insurer_id,
    )
    session.commit()
    return f"{incident.reference}-{facts.amc_number}.zip", archive
