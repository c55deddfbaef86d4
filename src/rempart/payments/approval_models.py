"""A payment run asked by one staff member and, above the threshold, approved by another before it runs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, new_id, str_enum


class RunRequestStatus(StrEnum):
    WAITING = "waiting"  # for a second staff member's approval
    APPROVED = "approved"  # approved, and the run made (``run_id``)
    REFUSED = "refused"  # refused by a second staff member
    LAPSED = "lapsed"  # the claims to pay changed after the request: it must be asked again


class PaymentRunRequest(Base):
    __tablename__ = "payment_run_requests"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    cutoff_date: Mapped[date] = mapped_column(Date)
    # What the requester saw in the preview: the approver approves exactly this, or nothing.
    claim_count: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[RunRequestStatus] = mapped_column(str_enum(RunRequestStatus, length=10))
    requested_by: Mapped[uuid.UUID] = mapped_column()  # insurer staff account
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    run_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    # As on ``PaymentRun``: the same key again answers with this request.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["insurer_id", "run_id"], ["payment_runs.insurer_id", "payment_runs.id"]),
        # Four eyes, in the database too: whoever asked never decides.
        CheckConstraint("decided_by IS NULL OR decided_by <> requested_by", name="second_person_decides"),
        CheckConstraint("(status = 'waiting') = (decided_by IS NULL)", name="decided_unless_waiting"),
        CheckConstraint("status = 'approved' OR run_id IS NULL", name="only_approved_has_a_run"),
        CheckConstraint("claim_count >= 0 AND total_cents >= 0", name="totals_non_negative"),
        Index("ix_payment_run_requests_run", "insurer_id", "run_id", unique=True),
        Index("ix_payment_run_requests_idempotency_key", "insurer_id", "idempotency_key", unique=True),
    )
