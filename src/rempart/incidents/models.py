"""Incidents: what happened, since when Rempart knows (the 72-hour clock), the scope of what was
compromised, the facts the access log gives for it per insurer and per person, and the timeline.

An incident is the platform's (the processor's), across insurers; what it found about an insurer's
members (``incident_subjects``) carries the insurer's id and sits behind the tenant wall, like
every insurer-owned row, so that an insurer's staff and its members see their own part only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, new_id, str_enum, utcnow


class IncidentStatus(StrEnum):
    OPEN = "open"  # being investigated
    CONTAINED = "contained"  # the access is cut; notifications go on
    CLOSED = "closed"


class ActionKind(StrEnum):
    OPENED = "opened"
    SCOPE_ADDED = "scope_added"
    FACTS_COMPUTED = "facts_computed"
    CONTAINED = "contained"
    NOTICE_SENT = "notice_sent"  # the processor's notice to an insurer
    AUTHORITY_NOTIFIED = "authority_notified"  # the insurer filed its Art. 33 notification
    LETTERS_DECIDED = "letters_decided"  # the insurer's Art. 34 decision
    EXPORTED = "exported"
    NOTE = "note"
    CLOSED = "closed"


class LettersDecision(StrEnum):
    PENDING = "pending"
    SEND = "send"  # the insurer sends the Art. 34 letters
    NOT_REQUIRED = "not_required"  # Art. 34(3): the insurer decided letters are not required


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(20), unique=True)  # INC-2027-0001
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Sorted, comma-separated: confidentiality, integrity, availability.
    nature: Mapped[str] = mapped_column(String(60))
    status: Mapped[IncidentStatus] = mapped_column(str_enum(IncidentStatus, length=10))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The 72-hour clock of Art. 33(1) runs from awareness, not detection.
    aware_at: Mapped[datetime] = mapped_column(UTCDateTime())
    contained_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    contact: Mapped[str] = mapped_column(String(300))
    measures_taken: Mapped[list[str]] = mapped_column(JSON, default=list)
    measures_proposed: Mapped[list[str]] = mapped_column(JSON, default=list)
    delay_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Encryption keys among what was compromised (decides whether ciphertext counts as disclosed).
    keys_compromised: Mapped[bool] = mapped_column(Boolean, default=False)
    alert_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    opened_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    facts_computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The access log's verification over the scope's windows, when the facts were computed.
    log_verified: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    log_problem: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        CheckConstraint("aware_at >= detected_at", name="aware_after_detection"),
        CheckConstraint("nature <> ''", name="has_a_nature"),
        CheckConstraint("status <> 'closed' OR closed_at IS NOT NULL", name="closed_has_a_time"),
    )


class IncidentScope(Base):
    """One set of compromised actors over a window; an incident's scope is all of its sets."""

    __tablename__ = "incident_scopes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column()
    label: Mapped[str] = mapped_column(String(200), default="")
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    practice_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    professional_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    added_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        CheckConstraint("until > since", name="window_ordered"),
        Index("ix_incident_scopes_incident", "incident_id"),
    )


class IncidentInsurer(Base):
    """An insurer the incident concerns, what the facts counted for it, and its notifications."""

    __tablename__ = "incident_insurers"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    people: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    attempted: Mapped[int] = mapped_column(Integer, default=0)
    # Per field and per channel, people counted (the Art. 33 notification's categories).
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    authority_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    letters: Mapped[LettersDecision] = mapped_column(str_enum(LettersDecision, length=12))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        CheckConstraint("people >= 0 AND records >= 0 AND attempted >= 0", name="counts_non_negative"),
    )


class IncidentSubject(Base):
    """A beneficiary the incident concerns: what of theirs was seen (or that they were only tried)."""

    __tablename__ = "incident_subjects"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    beneficiary_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    disclosed: Mapped[bool] = mapped_column(Boolean)
    fields: Mapped[str] = mapped_column(String(400), default="")  # sorted, comma-separated DataField values
    channels: Mapped[str] = mapped_column(String(200), default="")
    records: Mapped[int] = mapped_column(Integer, default=0)  # disclosing events, or attempts
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["insurer_id", "incident_id"],
            ["incident_insurers.insurer_id", "incident_insurers.incident_id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"], ["beneficiaries.insurer_id", "beneficiaries.id"], ondelete="CASCADE"
        ),
        Index("ix_incident_subjects_beneficiary", "insurer_id", "beneficiary_id"),
        CheckConstraint("disclosed OR fields = ''", name="nothing_seen_unless_disclosed"),
    )


class IncidentAction(Base):
    """The incident's own timeline; containment, kill switches and key revocations join it when read."""

    __tablename__ = "incident_actions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[ActionKind] = mapped_column(str_enum(ActionKind, length=20))
    text: Mapped[str] = mapped_column(Text, default="")
    insurer_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        Index("ix_incident_actions_incident", "incident_id", "at"),
    )
