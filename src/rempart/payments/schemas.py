"""Remittance advices and payment runs."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from rempart.payments.approval_models import PaymentRunRequest
from rempart.payments.models import PaymentRun, Remittance, RemittanceLine


class RemittanceLineOut(BaseModel):
    claim_id: uuid.UUID
    professional_id: uuid.UUID
    amount_cents: int

    @classmethod
    def of(cls, line: RemittanceLine) -> RemittanceLineOut:
        return cls(claim_id=line.claim_id, professional_id=line.professional_id, amount_cents=line.amount_cents)


class RemittanceOut(BaseModel):
    remittance_id: uuid.UUID
    remittance_number: str
    amc_number: str | None = None
    practice_id: uuid.UUID
    paid_at: datetime
    claim_count: int
    total_cents: int
    lines: list[RemittanceLineOut] | None = None

    @classmethod
    def of(cls, remittance: Remittance, *, with_lines: bool = False, amc_number: str | None = None) -> RemittanceOut:
        return cls(
            remittance_id=remittance.id,
            remittance_number=remittance.remittance_number,
            amc_number=amc_number,
            practice_id=remittance.practice_id,
            paid_at=remittance.paid_at,
            claim_count=remittance.claim_count,
            total_cents=remittance.total_cents,
            lines=[RemittanceLineOut.of(line) for line in remittance.lines] if with_lines else None,
        )


class RemittanceListOut(BaseModel):
    remittances: list[RemittanceOut]
    next: str | None = Field(
        default=None, description="the next page's URL (also the `Link` header, rel=next); absent on the last page"
    )


class PaymentRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cutoff_date: date


class PaymentRunOut(BaseModel):
    payment_run_id: uuid.UUID
    cutoff_date: date
    created_at: datetime
    claim_count: int
    remittance_count: int
    total_cents: int
    remittances: list[RemittanceOut] | None = None

    @classmethod
    def of(cls, run: PaymentRun, remittances: list[Remittance] | None = None) -> PaymentRunOut:
        return cls(
            payment_run_id=run.id,
            cutoff_date=run.cutoff_date,
            created_at=run.created_at,
            claim_count=run.claim_count,
            remittance_count=run.remittance_count,
            total_cents=run.total_cents,
            remittances=[RemittanceOut.of(r) for r in remittances] if remittances is not None else None,
        )


class PaymentRunListOut(BaseModel):
    payment_runs: list[PaymentRunOut]
    next: str | None = Field(default=None, description="the next page's URL (and `Link` rel=next); none on the last")


class RunRequestOut(BaseModel):
    """A payment run waiting for a second staff member's approval."""

    request_id: uuid.UUID
    status: str
    cutoff_date: date
    claim_count: int
    total_cents: int
    requested_by: uuid.UUID
    requested_at: datetime

    @classmethod
    def of(cls, request: PaymentRunRequest) -> RunRequestOut:
        return cls(
            request_id=request.id,
            status=request.status.value,
            cutoff_date=request.cutoff_date,
            claim_count=request.claim_count,
            total_cents=request.total_cents,
            requested_by=request.requested_by,
            requested_at=request.requested_at,
        )
