"""Prior approvals as practice software asks for them and reads them back."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rempart.approvals.models import ApprovalReason, ApprovalStatus, PriorApproval, PriorApprovalLine
from rempart.approvals.service import MAX_LINES, ApprovalRequest
from rempart.insurers.models import CareDomain
from rempart.pricing.engine import Limit
from rempart.pricing.schemas import CareLineIn


class PriorApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check_id: uuid.UUID
    care_domain: Literal[CareDomain.OPTI, CareDomain.AUDI, CareDomain.DENT, CareDomain.HOSP]
    lines: list[CareLineIn] = Field(min_length=1, max_length=MAX_LINES)

    def request(self) -> ApprovalRequest:
        return ApprovalRequest(
            check_id=self.check_id,
            care_domain=CareDomain(self.care_domain),
            lines=tuple(line.care_line() for line in self.lines),
        )


class ApprovalLineOut(BaseModel):
    line_no: int
    act_code: str
    care_date: date
    quantity: int
    price_cents: int
    amo_cents: int
    insurer_cents: int
    remainder_cents: int
    granted_cents: int
    limited_by: Limit | None

    @classmethod
    def of(cls, line: PriorApprovalLine) -> ApprovalLineOut:
        return cls(
            line_no=line.line_no,
            act_code=line.act_code,
            care_date=line.care_date,
            quantity=line.quantity,
            price_cents=line.price_cents,
            amo_cents=line.amo_cents,
            insurer_cents=line.insurer_cents,
            remainder_cents=line.remainder_cents,
            granted_cents=line.granted_cents,
            limited_by=line.limited_by,
        )


class PriorApprovalOut(BaseModel):
    approval_id: uuid.UUID
    approval_number: str
    check_id: uuid.UUID
    care_domain: CareDomain
    status: ApprovalStatus
    reason_code: ApprovalReason | None
    requested_cents: int
    granted_cents: int
    expires_on: date
    created_at: datetime
    decided_at: datetime | None
    cancelled_at: datetime | None
    used_by_claim: bool
    lines: list[ApprovalLineOut]

    @classmethod
    def of(cls, approval: PriorApproval) -> PriorApprovalOut:
        return cls(
            approval_id=approval.id,
            approval_number=approval.approval_number,
            check_id=approval.check_id,
            care_domain=approval.care_domain,
            status=approval.status,
            reason_code=approval.reason_code,
            requested_cents=approval.requested_cents,
            granted_cents=approval.granted_cents,
            expires_on=approval.expires_on,
            created_at=approval.created_at,
            decided_at=approval.decided_at,
            cancelled_at=approval.cancelled_at,
            used_by_claim=approval.claim_id is not None,
            lines=[ApprovalLineOut.of(line) for line in approval.lines],
        )


class ApprovalDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["grant", "refuse"]


class ApprovalListOut(BaseModel):
    """A page of the approvals waiting for a person, oldest first; ``next`` (also the ``Link``
    header) on every page but the last."""

    prior_approvals: list[PriorApprovalOut]
    next: str | None = None
