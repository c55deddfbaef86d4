"""Incidents as the security console and the insurers' staff send and read them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rempart.incidents.clock import InsurerChecklist
from rempart.incidents.models import Incident, IncidentStatus, LettersDecision
from rempart.incidents.service import MyIncident
from rempart.incidents.timeline import TimelineEntry

Nature = Literal["confidentiality", "integrity", "availability"]


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    nature: list[Nature] = Field(min_length=1, max_length=3)
    contact: str = Field(min_length=1, max_length=300, description="the processor's contact point")
    description: str = Field("", max_length=10_000)
    detected_at: AwareDatetime | None = None
    aware_at: AwareDatetime | None = Field(None, description="the 72-hour clock runs from here (default: now)")
    alert_id: uuid.UUID | None = Field(None, description="open it from this alert (linked, its time is detection's)")
    keys_compromised: bool = False


class IncidentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=10_000)
    measures_taken: list[str] | None = Field(None, max_length=50)
    measures_proposed: list[str] | None = Field(None, max_length=50)
    delay_reason: str | None = Field(None, max_length=5_000)
    keys_compromised: bool | None = None
    status: Literal["contained", "closed"] | None = None
    note: str | None = Field(None, max_length=2_000)


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field("", max_length=200)
    since: AwareDatetime
    until: AwareDatetime
    actor_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1_000, description="accounts and API clients")
    practice_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1_000)
    professional_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1_000)


class NotificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: Literal["notice_sent", "authority_notified", "letters"]
    letters: Literal["send", "not_required"] | None = None


class ClockOut(BaseModel):
    aware_at: datetime
    deadline: datetime
    hours_left: float
    stage: str


class InsurerPartOut(BaseModel):
    insurer_id: uuid.UUID
    amc_number: str
    insurer_name: str
    people: int
    records: int
    attempted: int
    clock: ClockOut
    missing: list[str]
    notice_sent_at: datetime | None
    authority_notified_at: datetime | None
    letters: LettersDecision

    @classmethod
    def of(cls, part: InsurerChecklist) -> InsurerPartOut:
        clock = part.clock
        return cls(
            insurer_id=part.insurer_id,
            amc_number=part.amc_number,
            insurer_name=part.insurer_name,
            people=part.people,
            records=part.records,
            attempted=part.attempted,
            clock=ClockOut(
                aware_at=clock.aware_at,
                deadline=clock.deadline,
                hours_left=round(clock.left.total_seconds() / 3600, 1),
                stage=clock.stage,
            ),
            missing=list(part.missing),
            notice_sent_at=part.notice_sent_at,
            authority_notified_at=part.authority_notified_at,
            letters=part.letters,
        )


class TimelineOut(BaseModel):
    at: datetime
    kind: str
    text: str

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineOut:
        return cls(at=entry.at, kind=entry.kind, text=entry.text)


class IncidentOut(BaseModel):
    incident_id: uuid.UUID
    reference: str
    title: str
    description: str
    nature: list[str]
    status: IncidentStatus
    detected_at: datetime
    aware_at: datetime
    contained_at: datetime | None
    closed_at: datetime | None
    contact: str
    measures_taken: list[str]
    measures_proposed: list[str]
    delay_reason: str | None
    keys_compromised: bool
    facts_computed_at: datetime | None
    log_verified: bool | None
    log_problem: str | None
    insurers: list[InsurerPartOut] | None = None
    timeline: list[TimelineOut] | None = None

    @classmethod
    def of(
        cls,
        incident: Incident,
        *,
        parts: list[InsurerChecklist] | None = None,
        entries: list[TimelineEntry] | None = None,
    ) -> IncidentOut:
        return cls(
            incident_id=incident.id,
            reference=incident.reference,
            title=incident.title,
            description=incident.description,
            nature=incident.nature.split(","),
            status=incident.status,
            detected_at=incident.detected_at,
            aware_at=incident.aware_at,
            contained_at=incident.contained_at,
            closed_at=incident.closed_at,
            contact=incident.contact,
            measures_taken=list(incident.measures_taken),
            measures_proposed=list(incident.measures_proposed),
            delay_reason=incident.delay_reason,
            keys_compromised=incident.keys_compromised,
            facts_computed_at=incident.facts_computed_at,
            log_verified=incident.log_verified,
            log_problem=incident.log_problem,
            insurers=[InsurerPartOut.of(p) for p in parts] if parts is not None else None,
            timeline=[TimelineOut.of(e) for e in entries] if entries is not None else None,
        )


class FactsOut(BaseModel):
    people: int
    events_examined: int
    log_verified: bool | None
    insurers: list[InsurerPartOut]


class MyIncidentOut(BaseModel):
    """Were you affected, and what of yours was seen."""

    reference: str
    title: str
    aware_at: datetime
    seen: bool = Field(description="false: your data was only tried, nothing of it was shown")
    fields: list[str]
    channels: list[str]
    first_seen: datetime | None
    last_seen: datetime | None
    records: int

    @classmethod
    def of(cls, mine: MyIncident) -> MyIncidentOut:
        return cls(
            reference=mine.reference,
            title=mine.title,
            aware_at=mine.aware_at,
            seen=mine.disclosed,
            fields=list(mine.fields),
            channels=list(mine.channels),
            first_seen=mine.first_seen,
            last_seen=mine.last_seen,
            records=mine.records,
        )
