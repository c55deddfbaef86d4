"""The access log: one row per access to personal data, sealed into signed checkpoints.

``access_events`` is written on the hot path (one insert, in the caller's transaction) and never
updated except once, by the sealer, which gives each event its place in the sealed sequence
(``seal_seq``). Nothing here has a foreign key: the log stands on its own and survives the deletion
of the practices, accounts and members it talks about, which it names by internal id only (never a
NIR or a name).

The log is a platform record, not an insurer-owned table: an event may concern no insurer (a miss
on an unknown card, an operator's action), so ``insurer_id`` is a nullable column with an index
rather than the first key column. On PostgreSQL the table is partitioned by month on
``occurred_at`` (see the migration), which is why its primary key there is ``(id, occurred_at)``;
the model names ``id`` alone so that SQLite keeps its cheap rowid key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from rempart.audit.disclosures import Purpose
from rempart.db import Base, UTCDateTime, new_id, str_enum, utcnow

# Big on PostgreSQL, the rowid alias on SQLite (which only auto-increments an INTEGER key).
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _where(condition: str) -> dict[str, Any]:
    """A partial index, on both databases."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


SEALED = "seal_seq IS NOT NULL"


def _where_sealed(condition: str | None) -> dict[str, Any]:
    """A query index: partial on ``condition`` and limited to sealed events, on both databases (see
    ``AccessEvent``'s indexes)."""
    return _where(f"{condition} AND {SEALED}" if condition else SEALED)


class Channel(StrEnum):
    PRO_API = "pro_api"  # practice software, API client
    PRO_PORTAL = "pro_portal"
    FHIR = "fhir"
    BACKOFFICE = "backoffice"  # insurer staff, web
    INSURER_API = "insurer_api"
    BENEFICIARY_PORTAL = "beneficiary_portal"
    SECURITY_CONSOLE = "security_console"
    CLI = "cli"  # an operator's command on the platform's machines
    BATCH = "batch"  # scheduled jobs: payment runs, imports


class ActorKind(StrEnum):
    PROFESSIONAL = "professional"  # a person of a practice, logged in
    PRACTICE_SOFTWARE = "practice_software"  # an API client, acting for a professional
    INSURER_STAFF = "insurer_staff"
    OPERATOR = "operator"  # platform security operator
    BENEFICIARY = "beneficiary"
    SYSTEM = "system"  # the platform itself (scheduled jobs)


class Outcome(StrEnum):
    DISCLOSED = "disclosed"  # the data was shown or written
    MISS = "miss"  # nothing matched: nothing disclosed, but recorded (enumeration shows as misses)
    REFUSED = "refused"  # authenticated but not allowed, throttled or contained
    ERROR = "error"  # failed part way; nothing disclosed


class AccessEvent(Base):
    __tablename__ = "access_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The event's public name: in proofs, exports and the views. Part of the hashed content.
    event_id: Mapped[uuid.UUID] = mapped_column(default=new_id)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # An ``Operation`` of the disclosure registry; a plain string so that a domain adding an
    # operation needs no migration of this table (the service refuses unregistered ones).
    operation: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[Purpose] = mapped_column(str_enum(Purpose, length=32))
    actor_kind: Mapped[ActorKind] = mapped_column(str_enum(ActorKind, length=20))
    # The authenticated principal: an account (people) or an API client (practice software).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    practice_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    # The professional a practice software or a practice account acted for.
    professional_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    profession: Mapped[str | None] = mapped_column(String(24), nullable=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, length=20))
    device: Mapped[str | None] = mapped_column(String(128), nullable=True)
    address: Mapped[str | None] = mapped_column(String(45), nullable=True)
    insurer_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    beneficiary_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    # Sorted, comma-separated ``DataField`` values; empty when nothing was disclosed.
    fields: Mapped[str] = mapped_column(String(400), default="")
    outcome: Mapped[Outcome] = mapped_column(str_enum(Outcome, length=10))
    # What the access was about: a rights check id, a claim id, an approval number, an incident id.
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    break_glass_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    # Position in the sealed sequence: contiguous from 0, given by the sealer; NULL until sealed.
    seal_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        CheckConstraint("outcome = 'disclosed' OR fields = ''", name="nothing_disclosed_unless_disclosed"),
        CheckConstraint("seal_seq IS NULL OR seal_seq >= 0", name="seal_seq_non_negative"),
        # "Events of these actors in this window" (detection, incident scope). Partial: system
        # events and misses (no beneficiary) stay out of the indexes they would only bloat. On
        # SQLite the query indexes hold sealed events only (migration 0008): every page an insert
        # touches is written again to the WAL at each commit, so each index cost the rights check
        # about as much as the event's row itself; the sealer now fills them, a whole batch in one
        # transaction. Readers look up the few unsealed events through the sealer's queue
        # (``rempart.audit.queries``). PostgreSQL does the same since migration 0009: there the
        # sealer's UPDATE writes a new row version that the indexes receive anyway.
        Index("ix_access_events_actor_time", "actor_id", "occurred_at", **_where_sealed("actor_id IS NOT NULL")),
        Index(
            "ix_access_events_practice_time", "practice_id", "occurred_at", **_where_sealed("practice_id IS NOT NULL")
        ),
        # "Events about this beneficiary" (the beneficiary's view, Art. 34 letters).
        Index(
            "ix_access_events_beneficiary_time",
            "beneficiary_id",
            "occurred_at",
            **_where_sealed("beneficiary_id IS NOT NULL"),
        ),
        # The insurer's view of accesses to its members.
        Index("ix_access_events_insurer_time", "insurer_id", "occurred_at", **_where_sealed(None)),
        # The sealer's work queue: small, since sealed rows leave it.
        Index("ix_access_events_unsealed", "id", **_where("seal_seq IS NULL")),
        Index("ix_access_events_seal_seq", "seal_seq", **_where("seal_seq IS NOT NULL")),
        # Proofs by event id (migration 0006): ids are time-ordered, so inserts stay at the right edge.
        Index("ix_access_events_event_id", "event_id", **_where_sealed(None)),
        # "Which beneficiaries did import job X write" (the job id is the reference).
        Index("ix_access_events_import_job", "reference", "beneficiary_id", **_where("operation = 'member_import'")),
    )


class Checkpoint(Base):
    """A signed head over one sealed batch of events (see ``rempart.audit.sealing``).

    ``head`` holds the exact bytes that were signed; the other columns repeat some of its values
    for queries, and ``verify`` checks they agree. ``leaves`` is the batch's leaf hashes in order
    (32 bytes each): it lets ``verify`` name the one event that changed and serves inclusion
    proofs; it is itself authenticated by ``batch_root`` in the signed head. ``frontier`` is the
    compact range of the log-level tree after this checkpoint, so that sealing and ``verify
    --since`` do not reread every earlier head.
    """

    __tablename__ = "audit_checkpoints"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The earliest and latest ``occurred_at`` of the batch: lets ``verify --since DATE`` start at
    # the right checkpoint and lets PostgreSQL skip partitions.
    first_occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(String(64))
    head: Mapped[str] = mapped_column(Text)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    leaves: Mapped[bytes] = mapped_column(LargeBinary)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint("count >= 1", name="count_positive"),
        CheckConstraint("first_seq >= 0", name="first_seq_non_negative"),
        Index("ix_audit_checkpoints_sealed_at", "sealed_at"),
        Index("ix_audit_checkpoints_first_seq", "first_seq"),
        Index("ix_audit_checkpoints_first_occurred_at", "first_occurred_at"),
    )


class BreakGlassStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REFUSED = "refused"
    REVOKED = "revoked"


class BreakGlassGrant(Base):
    """A platform operator's time-limited access to one beneficiary, approved by a second operator.

    Expiry is a time, not a status: a grant is usable while approved and ``now < expires_at``.
    """

    __tablename__ = "audit_break_glass_grants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    insurer_id: Mapped[uuid.UUID] = mapped_column()
    beneficiary_id: Mapped[uuid.UUID] = mapped_column()
    requested_by: Mapped[uuid.UUID] = mapped_column()
    reason: Mapped[str] = mapped_column(String(500))
    # An incident or support ticket reference, shown to the insurer.
    ticket: Mapped[str] = mapped_column(String(64))
    status: Mapped[BreakGlassStatus] = mapped_column(
        str_enum(BreakGlassStatus, length=10), default=BreakGlassStatus.REQUESTED
    )
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int] = mapped_column(Integer)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("duration_minutes BETWEEN 1 AND 240", name="duration_bounded"),
        # The four-eyes rule, in the database too: nobody approves their own request.
        CheckConstraint("decided_by IS NULL OR decided_by <> requested_by", name="second_operator"),
        CheckConstraint("status <> 'approved' OR expires_at IS NOT NULL", name="approved_has_expiry"),
        CheckConstraint("(status = 'requested') = (decided_by IS NULL)", name="decision_recorded"),
        Index("ix_audit_break_glass_grants_insurer", "insurer_id", "requested_at"),
    )


class InsurerLogPolicy(Base):
    """An insurer's choices about what its members see in their access log."""

    __tablename__ = "audit_insurer_policies"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # Off by default: a beneficiary sees "staff of <insurer>", not the staff member's name.
    show_staff_names: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SealerLock(Base):
    """One row that the sealer locks (PostgreSQL ``FOR UPDATE SKIP LOCKED``, SQLite's write lock) so
    that of several app processes one seals at a time and the others skip their turn."""

    __tablename__ = "audit_sealer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # When this sealer last made sure next months' partitions exist (PostgreSQL).
    partitions_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
