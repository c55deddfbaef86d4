"""Offline attestations: each insurer's signing keys, and the record of every attestation issued.

The token itself is not stored: it carries a memory-hard digest of the patient's NIR and date of
birth, and a dump of these tables must not offer even that to guess against. What is stored is
enough to answer "which attestation, of whom, valid when, signed by which key" when a claim cites
one after the platform was off.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKeyConstraint, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, new_id, str_enum, utcnow


class SigningKeyState(StrEnum):
    ACTIVE = "active"  # signs new attestations (one per insurer)
    RETIRED = "retired"  # replaced by a rotation; what it signed stays valid until it expires
    REVOKED = "revoked"  # what it signed at or after ``revoked_at`` is refused


class IssueReason(StrEnum):
    BENEFICIARY = "beneficiary"  # the insured person fetched their own
    MAILING = "mailing"  # the insurer's bulk issue for card mailing
    RENEWAL = "renewal"  # issued again before the previous one expires


class AttestationKey(Base):
    """An insurer's Ed25519 signing key, its private half wrapped like the insurer's other keys."""

    __tablename__ = "attestation_keys"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[SigningKeyState] = mapped_column(str_enum(SigningKeyState, length=8))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    kek_id: Mapped[str] = mapped_column(String(64))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        # Practice software finds a key by its id alone, whichever insurer it belongs to.
        Index("ix_attestation_keys_kid", "kid", unique=True),
        Index("ix_attestation_keys_version", "insurer_id", "version", unique=True),
        # At most one key signs for an insurer at a time.
        Index(
            "ix_attestation_keys_active",
            "insurer_id",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        CheckConstraint("(state = 'revoked') = (revoked_at IS NOT NULL)", name="revoked_has_a_time"),
        CheckConstraint(
            "state = 'active' OR retired_at IS NOT NULL OR revoked_at IS NOT NULL", name="ended_has_a_time"
        ),
        CheckConstraint("version >= 1", name="version_positive"),
    )


class Attestation(Base):
    """One attestation issued: whose, valid when, signed by which key, and why it was issued."""

    __tablename__ = "attestations"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)  # the token's cti
    beneficiary_id: Mapped[uuid.UUID] = mapped_column()
    contract_id: Mapped[uuid.UUID] = mapped_column()
    kid: Mapped[str] = mapped_column(String(16))
    reason: Mapped[IssueReason] = mapped_column(str_enum(IssueReason, length=12))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    # Per care domain, as signed (the verifier's bit order): what the patient was promised.
    third_party_payment: Mapped[int] = mapped_column(Integer)
    prior_approval: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"], ["beneficiaries.insurer_id", "beneficiaries.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["insurer_id", "contract_id"], ["contracts.insurer_id", "contracts.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["insurer_id", "kid"], ["attestation_keys.insurer_id", "attestation_keys.kid"]),
        Index("ix_attestations_id", "id", unique=True),
        Index("ix_attestations_beneficiary", "insurer_id", "beneficiary_id", "valid_to"),
        CheckConstraint("valid_to >= valid_from", name="validity_ordered"),
    )
