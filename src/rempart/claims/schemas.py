"""Claims as practice software sends them, and as both sides read them back."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rempart.claims.models import Claim, ClaimLine, ClaimReason, ClaimStatus, ReviewReason
from rempart.claims.service import COMMENT_LIMIT, MAX_LINES, ClaimRequest
from rempart.insurers.models import CareDomain
from rempart.pricing.engine import Limit
from rempart.pricing.schemas import CareLineIn


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check_id: uuid.UUID | None = Field(default=None, description="the rights check of the patient billed")
    attestation: str | None = Field(
        default=None,
        min_length=8,
        max_length=2000,
        pattern=r"^RA1:[0-9A-Z $%*+\-./:]+$",
        description="instead of a rights check, while the platform was off: the patient's signed offline "
        "attestation, as read from its QR code (the claim is then adjudicated under attestation)",
    )
    approval_number: str | None = Field(default=None, max_length=20, pattern=r"^[A-Z0-9-]+$")
    lines: list[CareLineIn] = Field(min_length=1, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _one_basis(self) -> ClaimIn:
        if (self.check_id is None) == (self.attestation is None):
            raise ValueError("give either check_id or attestation")
        return self

    def request(self) -> ClaimRequest:
        return ClaimRequest(
            check_id=self.check_id,
            approval_number=self.approval_number,
            lines=tuple(line.care_line() for line in self.lines),
            attestation=self.attestation,
        )


class ClaimLineOut(BaseModel):
    line_no: int
    care_domain: CareDomain
    act_code: str
    care_date: date
    quantity: int
    unit_price_cents: int
    price_cents: int
    amo_cents: int
    insurer_cents: int
    remainder_cents: int
    limited_by: Limit | None

    @classmethod
    def of(cls, line: ClaimLine) -> ClaimLineOut:
        return cls(
            line_no=line.line_no,
            care_domain=line.care_domain,
            act_code=line.act_code,
            care_date=line.care_date,
            quantity=line.quantity,
            unit_price_cents=line.unit_price_cents,
            price_cents=line.price_cents,
            amo_cents=line.amo_cents,
            insurer_cents=line.insurer_cents,
            remainder_cents=line.remainder_cents,
            limited_by=line.limited_by,
        )


class ClaimOut(BaseModel):
    claim_id: uuid.UUID
    check_id: uuid.UUID
    status: ClaimStatus
    reason_code: ClaimReason | None
    replaces_claim_id: uuid.UUID | None
    under_attestation: bool = Field(description="billed on an offline attestation while the platform was off")
    first_care_date: date
    price_cents: int
    amo_cents: int
    insurer_cents: int = Field(description="what the insurer pays the practice")
    remainder_cents: int
    created_at: datetime
    decided_at: datetime | None
    paid_at: datetime | None
    review_reason: ReviewReason | None = Field(
        description="why a claims agent rejected the claim after review (reason_code rejected-by-insurer)"
    )
    review_comment: str | None = Field(
        default=None,
        description="the claims agent's comment on their rejection; only on a claim read by its id",
    )
    lines: list[ClaimLineOut] | None = Field(default=None, description="absent from lists")

    @classmethod
    def of(cls, claim: Claim, *, with_lines: bool = True, review_comment: str | None = None) -> ClaimOut:
        """``review_comment`` in clear (``claims.service.review_comment``), for a claim read by its id."""
        return cls(
            claim_id=claim.id,
            check_id=claim.check_id,
            status=claim.status,
            reason_code=claim.reason_code,
            replaces_claim_id=claim.replaces_id,
            under_attestation=claim.attestation_id is not None,
            first_care_date=claim.first_care_date,
            price_cents=claim.price_cents,
            amo_cents=claim.amo_cents,
            insurer_cents=claim.insurer_cents,
            remainder_cents=claim.remainder_cents,
            created_at=claim.created_at,
            decided_at=claim.decided_at,
            paid_at=claim.paid_at,
            review_reason=claim.review_reason,
            review_comment=review_comment,
            lines=[ClaimLineOut.of(line) for line in claim.lines] if with_lines else None,
        )


class ClaimListOut(BaseModel):
    claims: list[ClaimOut]
    next: str | None = Field(
        default=None, description="the next page's URL (also the `Link` header, rel=next); absent on the last page"
    )


class InsurerClaimOut(ClaimOut):
    """The insurer's view adds who billed and for whom (internal ids)."""

    practice_id: uuid.UUID
    professional_id: uuid.UUID
    beneficiary_id: uuid.UUID
    approval_id: uuid.UUID | None
    attestation_id: uuid.UUID | None

    @classmethod
    def of_claim(cls, claim: Claim, *, with_lines: bool = True, review_comment: str | None = None) -> InsurerClaimOut:
        base = ClaimOut.of(claim, with_lines=with_lines, review_comment=review_comment)
        return cls(
            **base.model_dump(),
            practice_id=claim.practice_id,
            professional_id=claim.professional_id,
            beneficiary_id=claim.beneficiary_id,
            approval_id=claim.approval_id,
            attestation_id=claim.attestation_id,
        )


class InsurerClaimListOut(BaseModel):
    claims: list[InsurerClaimOut]
    next: str | None = Field(
        default=None, description="the next page's URL (also the `Link` header, rel=next); absent on the last page"
    )


class ClaimReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept", "reject"]
    # Checked by the service (``review_note``): a rejection needs a reason, an acceptance takes none;
    # the bound here only keeps an oversized body from being read further.
    reason: ReviewReason | None = Field(default=None, description="required to reject; absent to accept")
    comment: str | None = Field(
        default=None,
        max_length=4 * COMMENT_LIMIT,
        description=f"to reject: for the practice, one paragraph of at most {COMMENT_LIMIT} characters, "
        "at least 10 when the reason is other; name no patient",
    )
