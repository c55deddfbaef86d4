"""The insurer API's documents: products and their formulas, import jobs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from rempart.fields import OneLine
from rempart.insurers.jobs import ImportStatus, MembersImportJob
from rempart.insurers.models import CareDomain, Guarantee, Product
from rempart.insurers.service import PRODUCT_CODE, GuaranteeSpec

MAX_CENTS = 100_000_000


# Shown on rights checks and in the back office; PostgreSQL cannot store a NUL in text at all.
ProductName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), OneLine]


class GuaranteeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    care_domain: CareDomain
    brss_rate_pct: int = Field(default=100, ge=0, le=1000, description="total AMO + AMC, in % of the BRSS")
    flat_amount_cents: int = Field(default=0, ge=0, le=MAX_CENTS)
    yearly_ceiling_cents: int | None = Field(default=None, ge=0, le=MAX_CENTS)
    sante_100_class_a: bool = False
    class_b_ceiling_cents: int | None = Field(default=None, ge=0, le=MAX_CENTS)
    third_party_payment: bool = True
    prior_approval_required: bool = False

    def spec(self) -> GuaranteeSpec:
        return GuaranteeSpec(**self.model_dump())


class GuaranteeOut(GuaranteeIn):
    @classmethod
    def of(cls, guarantee: Guarantee) -> GuaranteeOut:
        return cls(
            care_domain=guarantee.care_domain,
            brss_rate_pct=guarantee.brss_rate_pct,
            flat_amount_cents=guarantee.flat_amount_cents,
            yearly_ceiling_cents=guarantee.yearly_ceiling_cents,
            sante_100_class_a=guarantee.sante_100_class_a,
            class_b_ceiling_cents=guarantee.class_b_ceiling_cents,
            third_party_payment=guarantee.third_party_payment,
            prior_approval_required=guarantee.prior_approval_required,
        )


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=PRODUCT_CODE.pattern)  # what a path may name, too
    name: ProductName
    guarantees: list[GuaranteeIn] = Field(min_length=1, max_length=len(CareDomain))
    responsible: bool = Field(
        default=True,
        description='a "contrat responsable" (art. L.871-1 CSS; true when absent): its optics, hearing and '
        "dental formulas must cover 100 % Santé class A (sante_100_class_a), else 422 validation-failed",
    )


class ProductUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProductName
    guarantees: list[GuaranteeIn] = Field(min_length=1, max_length=len(CareDomain))
    responsible: bool | None = Field(
        default=None,
        description='a "contrat responsable" (art. L.871-1 CSS); unchanged when absent. It changes at once, '
        "not on effective_on; a responsible product's optics, hearing and dental formulas must cover "
        "100 % Santé class A (sante_100_class_a), else 422 validation-failed",
    )
    effective_on: date | None = Field(
        default=None,
        description="the first day of care the new formulas apply to (today or later; today if absent); "
        "care given before it keeps the formulas of its day",
    )


class ProductRetireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retired_on: date = Field(description="closed to new members from this day (today or later)")
    successor_code: str | None = Field(
        default=None,
        pattern=PRODUCT_CODE.pattern,
        description="the open product of this insurer new members go on instead: required when contracts "
        "use this one (they go on under it until they end; none is moved)",
    )


class ScheduledChangeOut(BaseModel):
    effective_on: date
    guarantees: list[GuaranteeOut]


class ProductOut(BaseModel):
    product_id: uuid.UUID
    code: str
    name: str
    responsible: bool = Field(description='a "contrat responsable" (art. L.871-1 CSS)')
    guarantees: list[GuaranteeOut] = Field(description="the formulas for care given today")
    scheduled: ScheduledChangeOut | None = Field(description="the next change of formulas, if one is scheduled")
    retired_on: date | None = Field(description="closed to new members from this day")
    successor_code: str | None = Field(description="the product new members go on instead of this retired one")

    @classmethod
    def of(cls, product: Product, today: date) -> ProductOut:
        scheduled = product.scheduled_after(today)
        return cls(
            product_id=product.id,
            code=product.code,
            name=product.name,
            responsible=product.responsible,
            guarantees=[GuaranteeOut.of(g) for g in product.formulas_on(today)],
            scheduled=None
            if scheduled is None
            else ScheduledChangeOut(effective_on=scheduled[0], guarantees=[GuaranteeOut.of(g) for g in scheduled[1]]),
            retired_on=product.retired_on,
            successor_code=product.successor.code if product.successor is not None else None,
        )


class ProductListOut(BaseModel):
    """A page of the products, oldest first; ``next`` (also the ``Link`` header) on every page but the last."""

    products: list[ProductOut]
    next: str | None = None


class RowErrorOut(BaseModel):
    line: int
    field: str
    reason: str


class ImportJobOut(BaseModel):
    job_id: uuid.UUID
    status: ImportStatus
    file_format: str
    rows_total: int
    rows_done: int
    contracts_created: int
    beneficiaries_created: int
    unchanged: int
    rejected: int
    errors: list[RowErrorOut]
    failure: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: MembersImportJob) -> ImportJobOut:
        return cls(
            job_id=job.id,
            status=job.status,
            file_format=job.file_format,
            rows_total=job.rows_total,
            rows_done=job.rows_done,
            contracts_created=job.contracts_created,
            beneficiaries_created=job.beneficiaries_created,
            unchanged=job.unchanged,
            rejected=job.rejected,
            errors=[RowErrorOut.model_validate(e) for e in job.error_list()],
            failure=job.failure,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )


class ImportJobListOut(BaseModel):
    """A page of the imports, newest first; ``next`` (also the ``Link`` header) on every page but the last."""

    jobs: list[ImportJobOut]
    next: str | None = None
