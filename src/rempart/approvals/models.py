"""Prior approvals ("prises en charge") for optics, hearing aids, dental care and hospital stays."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rempart.db import Base, UTCDateTime, new_id, str_enum
from rempart.insurers.models import CareDomain
from rempart.pricing.models import PricedLineColumns


class ApprovalStatus(StrEnum):
    GRANTED = "granted"
    PARTIALLY_GRANTED = "partially_granted"  # some lines capped by a ceiling
    REFUSED = "refused"
    PENDING = "pending"  # waits for a person at the insurer
    CANCELLED = "cancelled"


# Approvals a claim may cite.
USABLE_APPROVAL = frozenset({ApprovalStatus.GRANTED, ApprovalStatus.PARTIALLY_GRANTED})


class ApprovalReason(StrEnum):
    """Stable reason codes of a refusal or a partial grant; practice software keys on them."""

    NOT_COVERED_AT_DATE = "not-covered-at-date-of-care"
    DOMAIN_NOT_COVERED = "domain-not-covered"
    PRICE_OVER_REGULATED_LIMIT = "price-over-regulated-limit"
    CEILING_EXHAUSTED = "ceiling-exhausted"
    CEILING_PARTLY_USED = "ceiling-partly-used"
    MANUAL_REVIEW = "manual-review"
    REFUSED_BY_INSURER = "refused-by-insurer"


class PriorApproval(Base):
    __tablename__ = "prior_approvals"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    approval_number: Mapped[str] = mapped_column(String(20))
    check_id: Mapped[uuid.UUID] = mapped_column()
    beneficiary_id: Mapped[uuid.UUID] = mapped_column()
    contract_id: Mapped[uuid.UUID] = mapped_column()
    practice_id: Mapped[uuid.UUID] = mapped_column()
    professional_id: Mapped[uuid.UUID] = mapped_column()
    care_domain: Mapped[CareDomain] = mapped_column(str_enum(CareDomain, length=4))
    status: Mapped[ApprovalStatus] = mapped_column(str_enum(ApprovalStatus, length=20))
    reason_code: Mapped[ApprovalReason | None] = mapped_column(str_enum(ApprovalReason, length=32), nullable=True)
    # The insurer's share the lines would get without yearly ceilings, and what is committed.
    requested_cents: Mapped[int] = mapped_column(BigInteger)
    granted_cents: Mapped[int] = mapped_column(BigInteger)
    expires_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)  # insurer staff account, if a person
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The accepted claim that used this approval; an approval pays once.
    claim_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(64))
    request_digest: Mapped[str] = mapped_column(String(64))

    lines: Mapped[list[PriorApprovalLine]] = relationship(
        lazy="select", order_by="PriorApprovalLine.line_no", cascade="all, delete-orphan"
    )

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["insurer_id", "check_id"], ["rights_checks.insurer_id", "rights_checks.id"]),
        ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"], ["beneficiaries.insurer_id", "beneficiaries.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["practice_id"], ["practices.id"]),
        ForeignKeyConstraint(["professional_id"], ["professionals.id"]),
        UniqueConstraint("insurer_id", "approval_number"),
        # The same Idempotency-Key from the same practice never makes a second approval.
        UniqueConstraint("insurer_id", "practice_id", "idempotency_key"),
        UniqueConstraint("insurer_id", "claim_id"),
        Index("ix_prior_approvals_practice", "practice_id", "created_at"),
        Index("ix_prior_approvals_id", "id", unique=True),
        CheckConstraint("care_domain IN ('OPTI', 'AUDI', 'DENT', 'HOSP')", name="approval_domain"),
        CheckConstraint("granted_cents >= 0 AND granted_cents <= requested_cents", name="granted_within_requested"),
        CheckConstraint(
            "status <> 'refused' OR (reason_code IS NOT NULL AND granted_cents = 0)", name="refusal_reason"
        ),
        CheckConstraint("status <> 'cancelled' OR cancelled_at IS NOT NULL", name="cancellation_time"),
    )


class PriorApprovalLine(PricedLineColumns, Base):
    __tablename__ = "prior_approval_lines"

    insurer_id: Mapped[uuid.UUID] = mapped_column()
    approval_id: Mapped[uuid.UUID] = mapped_column()
    granted_cents: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        ForeignKeyConstraint(
            ["insurer_id", "approval_id"], ["prior_approvals.insurer_id", "prior_approvals.id"], ondelete="CASCADE"
        ),
        CheckConstraint("granted_cents >= 0 AND granted_cents <= insurer_cents", name="granted_within_share"),
        *PricedLineColumns.line_constraints("approval_id"),
    )
