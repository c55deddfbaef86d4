"""Claims for third-party payment: lines of care billed to an insurer, adjudicated, then paid."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rempart.db import Base, UTCDateTime, new_id, str_enum
from rempart.pricing.models import PricedLineColumns


class ClaimStatus(StrEnum):
    RECEIVED = "received"  # stored, not yet adjudicated (only inside the submitting transaction)
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PENDING_REVIEW = "pending_review"  # waits for a claims agent
    PAID = "paid"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"  # replaced by a corrected resubmission


# Claims whose lines still stand (for duplicate detection and ceilings).
LIVE_CLAIM = frozenset({ClaimStatus.RECEIVED, ClaimStatus.ACCEPTED, ClaimStatus.PENDING_REVIEW, ClaimStatus.PAID})
# Claims the practice may still cancel or correct.
OPEN_CLAIM = frozenset({ClaimStatus.ACCEPTED, ClaimStatus.REJECTED, ClaimStatus.PENDING_REVIEW})


class ClaimReason(StrEnum):
    """Stable adjudication reason codes; practice software keys on them."""

    NOT_COVERED_AT_DATE = "not-covered-at-date-of-care"
    DOMAIN_NOT_COVERED = "domain-not-covered"
    APPROVAL_MISSING = "approval-missing"
    APPROVAL_NOT_GRANTED = "approval-not-granted"
    APPROVAL_EXPIRED = "approval-expired"
    APPROVAL_EXCEEDED = "approval-exceeded"
    APPROVAL_MISMATCH = "approval-mismatch"  # another beneficiary, practice or care domain
    APPROVAL_ALREADY_USED = "approval-already-used"
    CEILING_EXHAUSTED = "ceiling-exhausted"
    DUPLICATE_CLAIM = "duplicate-claim"
    PRICE_OVER_REGULATED_LIMIT = "price-over-regulated-limit"
    MANUAL_REVIEW = "manual-review"  # pending: amount over the insurer's review threshold
    REJECTED_BY_INSURER = "rejected-by-insurer"
    # A claim under attestation whose attestation does not hold (the signature did, so the patient is known).
    ATTESTATION_EXPIRED = "attestation-expired"  # not valid at the date of care
    ATTESTATION_KEY_REVOKED = "attestation-key-revoked"  # signed by a key after its revocation
    ATTESTATION_DOMAIN = "attestation-domain-not-covered"  # the attestation gave no third-party payment here


class ReviewReason(StrEnum):
    """Why a claims agent rejected a claim held for review: the practice reads it on the claim and
    its remittance, beside the agent's comment."""

    NOT_PERFORMED = "care-not-performed"  # the care billed was not given, or not as billed
    DOCUMENTS_MISSING = "documents-missing"  # prescription, quote or invoice not provided
    AMOUNT_DISPUTED = "amount-disputed"  # the price does not match the quote, the approval or the act
    DUPLICATE = "duplicate"  # the same care billed twice under another form
    NOT_COVERED = "not-covered"  # outside what the contract covers
    OTHER = "other"  # the comment says why


class Claim(Base):
    __tablename__ = "claims"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    check_id: Mapped[uuid.UUID] = mapped_column()
    beneficiary_id: Mapped[uuid.UUID] = mapped_column()
    contract_id: Mapped[uuid.UUID] = mapped_column()
    practice_id: Mapped[uuid.UUID] = mapped_column()
    professional_id: Mapped[uuid.UUID] = mapped_column()
    approval_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    # "Under attestation": billed while the platform was off, on the patient's signed attestation;
    # adjudicated on what the attestation promised at the date of care, not on today's rights.
    attestation_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    # The claim this one corrects (a resubmission), if any.
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    status: Mapped[ClaimStatus] = mapped_column(str_enum(ClaimStatus, length=16))
    reason_code: Mapped[ClaimReason | None] = mapped_column(str_enum(ClaimReason, length=32), nullable=True)
    first_care_date: Mapped[date] = mapped_column(Date)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    amo_cents: Mapped[int] = mapped_column(BigInteger)
    insurer_cents: Mapped[int] = mapped_column(BigInteger)  # what the insurer pays the practice
    remainder_cents: Mapped[int] = mapped_column(BigInteger)
    # Hash of (practice, beneficiary, lines): the same care billed twice is a duplicate.
    fingerprint: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    request_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)  # claims agent, when a person decided
    # A claims agent's rejection: why, and their comment, encrypted under the insurer's key (free
    # text about a person's care is health data; the practice reads it, a dump does not).
    review_reason: Mapped[ReviewReason | None] = mapped_column(str_enum(ReviewReason, length=24), nullable=True)
    review_comment_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # cancelled or superseded
    payment_run_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    lines: Mapped[list[ClaimLine]] = relationship(
        lazy="select", order_by="ClaimLine.line_no", cascade="all, delete-orphan"
    )

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["insurer_id", "check_id"], ["rights_checks.insurer_id", "rights_checks.id"]),
        ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"], ["beneficiaries.insurer_id", "beneficiaries.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["insurer_id", "approval_id"], ["prior_approvals.insurer_id", "prior_approvals.id"]),
        ForeignKeyConstraint(["insurer_id", "replaces_id"], ["claims.insurer_id", "claims.id"]),
        ForeignKeyConstraint(["insurer_id", "attestation_id"], ["attestations.insurer_id", "attestations.id"]),
        ForeignKeyConstraint(["practice_id"], ["practices.id"]),
        ForeignKeyConstraint(["professional_id"], ["professionals.id"]),
        # The same Idempotency-Key from the same practice never makes a second claim.
        UniqueConstraint("insurer_id", "practice_id", "idempotency_key"),
        # A claim is corrected once: the correction supersedes it.
        UniqueConstraint("insurer_id", "replaces_id"),
        Index("ix_claims_id", "id", unique=True),
        Index("ix_claims_review", "insurer_id", "status", "created_at"),
        Index("ix_claims_practice", "practice_id", "created_at"),
        Index("ix_claims_fingerprint", "insurer_id", "fingerprint"),
        Index("ix_claims_attestation", "insurer_id", "attestation_id", "created_at"),
        CheckConstraint(
            "price_cents >= 0 AND amo_cents >= 0 AND insurer_cents >= 0 AND remainder_cents >= 0",
            name="amounts_non_negative",
        ),
        CheckConstraint("amo_cents + insurer_cents + remainder_cents = price_cents", name="shares_add_up"),
        CheckConstraint("status <> 'rejected' OR reason_code IS NOT NULL", name="rejection_reason"),
        CheckConstraint(
            "(status = 'paid') = (paid_at IS NOT NULL AND payment_run_id IS NOT NULL)", name="paid_has_a_run"
        ),
        CheckConstraint("status NOT IN ('cancelled', 'superseded') OR closed_at IS NOT NULL", name="closing_time"),
    )


class ClaimLine(PricedLineColumns, Base):
    __tablename__ = "claim_lines"

    insurer_id: Mapped[uuid.UUID] = mapped_column()
    claim_id: Mapped[uuid.UUID] = mapped_column()

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id", "claim_id"], ["claims.insurer_id", "claims.id"], ondelete="CASCADE"),
        *PricedLineColumns.line_constraints("claim_id"),
    )
