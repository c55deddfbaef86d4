"""Lines of care as practice software sends them, and the split it gets back."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from rempart.insurers.models import CareDomain
from rempart.pricing.engine import (
    MAX_QUANTITY,
    MAX_UNIT_PRICE_CENTS,
    CareLine,
    Limit,
    LineQuote,
    Sante100Class,
)
from rempart.pricing.service import QuoteResult

Cents = Field(ge=0, le=MAX_UNIT_PRICE_CENTS)


class CareLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    care_domain: CareDomain
    act_code: str = Field(min_length=1, max_length=16, pattern=r"^[A-Z0-9.]+$", description="CCAM/NGAP/LPP/CIP code")
    care_date: date
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)
    unit_price_cents: int = Cents
    brss_cents: int = Field(ge=0, le=MAX_UNIT_PRICE_CENTS, description="base reimbursement (BRSS) per unit")
    amo_rate_pct: int = Field(ge=0, le=100, description="share of the BRSS the compulsory scheme pays")
    sante_100_class: Sante100Class | None = None
    regulated_price_cents: int | None = Field(
        default=None, ge=0, le=MAX_UNIT_PRICE_CENTS, description="regulated price per unit (PLV, HLF)"
    )

    def care_line(self) -> CareLine:
        return CareLine(
            care_domain=self.care_domain,
            act_code=self.act_code,
            care_date=self.care_date,
            quantity=self.quantity,
            unit_price_cents=self.unit_price_cents,
            brss_cents=self.brss_cents,
            amo_rate_pct=self.amo_rate_pct,
            sante_100_class=self.sante_100_class,
            regulated_price_cents=self.regulated_price_cents,
        )


class PricedLineOut(BaseModel):
    line_no: int
    care_domain: CareDomain
    act_code: str
    care_date: date
    quantity: int
    price_cents: int
    amo_cents: int
    insurer_cents: int
    remainder_cents: int
    ceiling_consumed_cents: int
    limited_by: Limit | None
    over_regulated_price: bool

    @classmethod
    def of(cls, number: int, line: CareLine, priced: LineQuote) -> PricedLineOut:
        return cls(
            line_no=number,
            care_domain=line.care_domain,
            act_code=line.act_code,
            care_date=line.care_date,
            quantity=line.quantity,
            price_cents=priced.price_cents,
            amo_cents=priced.amo_cents,
            insurer_cents=priced.insurer_cents,
            remainder_cents=priced.remainder_cents,
            ceiling_consumed_cents=priced.ceiling_consumed_cents,
            limited_by=priced.limited_by,
            over_regulated_price=priced.over_regulated_price,
        )


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check_id: uuid.UUID
    lines: list[CareLineIn] = Field(min_length=1, max_length=99)


class CeilingOut(BaseModel):
    care_domain: CareDomain
    year: int
    ceiling_cents: int
    remaining_before_cents: int
    consumed_cents: int
    remaining_after_cents: int


class QuoteOut(BaseModel):
    check_id: uuid.UUID
    price_cents: int
    amo_cents: int
    insurer_cents: int
    remainder_cents: int
    lines: list[PricedLineOut]
    ceilings: list[CeilingOut]

    @classmethod
    def of(cls, result: QuoteResult, lines: list[CareLine]) -> QuoteOut:
        quote = result.quote
        consumed = quote.consumed()
        ceilings = [
            CeilingOut(
                care_domain=key.care_domain,
                year=key.year,
                ceiling_cents=ceiling,
                remaining_before_cents=max(0, ceiling - used),
                consumed_cents=consumed.get(key, 0),
                remaining_after_cents=quote.remaining_after.get(key, max(0, ceiling - used)),
            )
            for key, (ceiling, used) in sorted(result.ceilings.items(), key=lambda i: (i[0].care_domain, i[0].year))
        ]
        return cls(
            check_id=result.check.id,
            price_cents=quote.price_cents,
            amo_cents=quote.amo_cents,
            insurer_cents=quote.insurer_cents,
            remainder_cents=quote.remainder_cents,
            lines=[
                PricedLineOut.of(n, line, priced)
                for n, (line, priced) in enumerate(zip(lines, quote.lines, strict=True), start=1)
            ],
            ceilings=ceilings,
        )
