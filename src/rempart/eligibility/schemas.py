"""The rights check as practice software sends it and gets it back: coverage, never an identity."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from stdnum.fr import nir as nir_number

from rempart.eligibility.service import MAX_BATCH, DomainRights, RightsAnswer, RightsQuery
from rempart.insurers.models import CareDomain


class RightsCheckIn(BaseModel):
    """What the patient hands over at the counter: the card, the NIR and the date of birth."""

    model_config = ConfigDict(extra="forbid")

    amc_number: str = Field(pattern=r"^\d{8,10}$", description="the insurer's AMC number, from the card")
    member_number: str = Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z]+$")
    nir: str = Field(min_length=15, max_length=21, description="NIR with its key, spaces allowed")
    birth_date: date
    birth_rank: int = Field(default=1, ge=1, le=9, description="rang gémellaire, for twins")
    care_date: date | None = Field(default=None, description="default: today in France")
    care_domains: list[CareDomain] = Field(default_factory=list, max_length=len(CareDomain))

    @field_validator("nir")
    @classmethod
    def _valid_nir(cls, value: str) -> str:
        # The key is public arithmetic: refusing a mistyped NIR tells nothing about anyone.
        if not nir_number.is_valid(value):
            raise ValueError("not a valid NIR (13 characters and a 2-digit key)")
        return nir_number.compact(value)

    def query(self) -> RightsQuery:
        return RightsQuery(
            amc_number=self.amc_number,
            member_number=self.member_number,
            nir=self.nir,
            birth_date=self.birth_date,
            birth_rank=self.birth_rank,
            care_date=self.care_date,
            care_domains=tuple(self.care_domains),
        )


class FormulaOut(BaseModel):
    brss_rate_pct: int = Field(description="total AMO + AMC as a percentage of the BRSS")
    flat_amount_cents: int
    yearly_ceiling_cents: int | None
    sante_100_class_a: bool
    class_b_ceiling_cents: int | None


class DomainRightsOut(BaseModel):
    care_domain: CareDomain
    covered: bool
    formula: FormulaOut | None
    remaining_ceiling_cents: int | None
    third_party_payment: bool
    prior_approval_required: bool

    @classmethod
    def of(cls, rights: DomainRights) -> DomainRightsOut:
        formula = rights.formula
        return cls(
            care_domain=rights.care_domain,
            covered=rights.covered,
            formula=FormulaOut(
                brss_rate_pct=formula.brss_rate_pct,
                flat_amount_cents=formula.flat_amount_cents,
                yearly_ceiling_cents=formula.yearly_ceiling_cents,
                sante_100_class_a=formula.sante_100_class_a,
                class_b_ceiling_cents=formula.class_b_ceiling_cents,
            )
            if formula
            else None,
            remaining_ceiling_cents=rights.remaining_ceiling_cents,
            third_party_payment=rights.third_party_payment,
            prior_approval_required=rights.prior_approval_required,
        )


class RightsCheckOut(BaseModel):
    check_id: uuid.UUID = Field(description="cite it in quotes, prior approvals and claims")
    status: Literal["covered", "not_covered"]
    care_date: date
    valid_from: date
    valid_to: date | None
    amc_number: str
    product_code: str
    domains: list[DomainRightsOut]
    expires_at: datetime = Field(description="until when the check may be cited")

    @classmethod
    def of(cls, answer: RightsAnswer) -> RightsCheckOut:
        return cls(
            check_id=answer.check_id,
            status="covered" if answer.covered else "not_covered",
            care_date=answer.care_date,
            valid_from=answer.valid_from,
            valid_to=answer.valid_to,
            amc_number=answer.amc_number,
            product_code=answer.product_code,
            domains=[DomainRightsOut.of(d) for d in answer.domains],
            expires_at=answer.expires_at,
        )


class RightsCheckBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[RightsCheckIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchItemOut(BaseModel):
    index: int
    status: int
    rights: RightsCheckOut | None = None
    problem: dict[str, Any] | None = None


class RightsCheckBatchOut(BaseModel):
    results: list[BatchItemOut]
