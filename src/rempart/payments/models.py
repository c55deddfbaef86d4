"""Payment runs and remittance advices ("RSP"): what was paid, when, to which practice, for which claims."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKeyConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rempart.db import Base, UTCDateTime, new_id


class PaymentRun(Base):
    __tablename__ = "payment_runs"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Accepted claims whose care started on or before this day are paid.
    cutoff_date: Mapped[date] = mapped_column(Date)
    started_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)  # insurer staff account
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claim_count: Mapped[int] = mapped_column(Integer, default=0)
    remittance_count: Mapped[int] = mapped_column(Integer, default=0)
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # The Idempotency-Key it was asked with (API header, back-office hidden field) and a digest of
    # what was asked: the same key again answers with this run, whatever happened since.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        CheckConstraint("claim_count >= 0 AND remittance_count >= 0 AND total_cents >= 0", name="totals_non_negative"),
        Index("ix_payment_runs_idempotency_key", "insurer_id", "idempotency_key", unique=True),
    )


class Remittance(Base):
    """One practice's payment advice within a run."""

    __tablename__ = "remittances"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    remittance_number: Mapped[str] = mapped_column(String(24))
    payment_run_id: Mapped[uuid.UUID] = mapped_column()
    practice_id: Mapped[uuid.UUID] = mapped_column()
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claim_count: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(BigInteger)

    lines: Mapped[list[RemittanceLine]] = relationship(lazy="select", order_by="RemittanceLine.claim_id")

    __table_args__ = (
        ForeignKeyConstraint(
            ["insurer_id", "payment_run_id"], ["payment_runs.insurer_id", "payment_runs.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["practice_id"], ["practices.id"]),
        UniqueConstraint("insurer_id", "remittance_number"),
        UniqueConstraint("insurer_id", "payment_run_id", "practice_id"),
        Index("ix_remittances_id", "id", unique=True),
        Index("ix_remittances_practice", "practice_id", "paid_at"),
        CheckConstraint("claim_count >= 1 AND total_cents >= 0", name="totals_valid"),
    )


class RemittanceLine(Base):
    __tablename__ = "remittance_lines"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    remittance_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    claim_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    professional_id: Mapped[uuid.UUID] = mapped_column()
    amount_cents: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        ForeignKeyConstraint(
            ["insurer_id", "remittance_id"], ["remittances.insurer_id", "remittances.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["insurer_id", "claim_id"], ["claims.insurer_id", "claims.id"]),
        ForeignKeyConstraint(["professional_id"], ["professionals.id"]),
        # The second wall behind the run's claim-by-update: a claim is on one remittance, ever.
        UniqueConstraint("insurer_id", "claim_id"),
        CheckConstraint("amount_cents >= 0", name="amount_non_negative"),
    )
