"""The quote engine ("calcul", ROC CLC): pure functions over integer cents.

For each line of care it splits the price between the compulsory scheme (AMO), the insurer (AMC)
and the patient:

- AMO pays ``amo_rate_pct`` of the base reimbursement (BRSS), never more than the price.
- The guarantee promises ``brss_rate_pct`` of the BRSS, AMO included ("300 % BRSS"), plus a flat
  amount per unit; the insurer pays what the promise leaves after AMO, never more than the price
  leaves after AMO.
- 100 % Santé class A lines, under a guarantee that covers them (every "contrat responsable"),
  leave no remainder within the regulated price (PLV/HLF): the insurer pays the regulated price
  minus AMO, whatever the yearly ceilings say (the reform puts class A outside them).
- Class B lines (free price) are capped by the guarantee's class B ceiling per line.
- A yearly ceiling per beneficiary and care domain caps the insurer's share; lines consume it in
  order, each year of care its own ceiling.

Percentages are rounded half up to the cent, once per line. Nothing here reads the database:
callers pass the formulas and what each ceiling has already consumed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol

from rempart.errors import ValidationFailed
from rempart.insurers.models import SANTE_100_DOMAINS, CareDomain

# Bounds that keep every sum far below a 32-bit column and reject absurd input early.
MAX_UNIT_PRICE_CENTS = 10_000_000  # 100,000 € for one unit of care
MAX_QUANTITY = 999
MAX_LINE_PRICE_CENTS = 100_000_000  # 1 M€ for one line
# The calendar years of care a yearly ceiling is kept for (``ceiling_usage.year``'s CHECK): a date
# outside them is a typing slip, refused here rather than by the database at acceptance.
MIN_CARE_YEAR = 2000
MAX_CARE_YEAR = 2200


class Sante100Class(StrEnum):
    A = "A"  # regulated price, no remainder under a "contrat responsable"
    B = "B"  # free price


class Limit(StrEnum):
    """What set the insurer's share of a line, when something capped the guarantee's promise."""

    NOT_COVERED = "not_covered"  # no formula for this care domain
    PRICE = "price"  # the promise exceeded what AMO left of the price
    CLASS_B_CEILING = "class_b_ceiling"
    YEARLY_CEILING = "yearly_ceiling"


class GuaranteeTerms(Protocol):
    """The fields of a guarantee the engine reads (``rempart.insurers.models.Guarantee`` has them)."""

    @property
    def brss_rate_pct(self) -> int: ...
    @property
    def flat_amount_cents(self) -> int: ...
    @property
    def yearly_ceiling_cents(self) -> int | None: ...
    @property
    def sante_100_class_a(self) -> bool: ...
    @property
    def class_b_ceiling_cents(self) -> int | None: ...


@dataclass(frozen=True)
class Formula:
    brss_rate_pct: int
    flat_amount_cents: int = 0
    yearly_ceiling_cents: int | None = None
    sante_100_class_a: bool = False
    class_b_ceiling_cents: int | None = None

    @classmethod
    def of(cls, terms: GuaranteeTerms) -> Formula:
        return cls(
            brss_rate_pct=terms.brss_rate_pct,
            flat_amount_cents=terms.flat_amount_cents,
            yearly_ceiling_cents=terms.yearly_ceiling_cents,
            sante_100_class_a=terms.sante_100_class_a,
            class_b_ceiling_cents=terms.class_b_ceiling_cents,
        )


@dataclass(frozen=True)
class CareLine:
    care_domain: CareDomain
    act_code: str
    care_date: date
    quantity: int
    unit_price_cents: int
    brss_cents: int  # base reimbursement per unit
    amo_rate_pct: int  # share of the BRSS the compulsory scheme pays
    sante_100_class: Sante100Class | None = None
    regulated_price_cents: int | None = None  # per unit: PLV for devices, HLF for dental care

    def validate(self) -> None:
        problems = []
        if not 1 <= self.quantity <= MAX_QUANTITY:
            problems.append(f"quantity must be between 1 and {MAX_QUANTITY}")
        if not 0 <= self.unit_price_cents <= MAX_UNIT_PRICE_CENTS:
            problems.append("unit price out of range")
        elif self.quantity * self.unit_price_cents > MAX_LINE_PRICE_CENTS:
            problems.append("line price (quantity × unit price) out of range")
        if not MIN_CARE_YEAR <= self.care_date.year <= MAX_CARE_YEAR:
            problems.append(f"date of care out of range (years {MIN_CARE_YEAR} to {MAX_CARE_YEAR})")
        if not 0 <= self.brss_cents <= MAX_UNIT_PRICE_CENTS:
            problems.append("base reimbursement out of range")
        if not 0 <= self.amo_rate_pct <= 100:
            problems.append("AMO rate must be between 0 and 100 %")
        if self.regulated_price_cents is not None and not 0 <= self.regulated_price_cents <= MAX_UNIT_PRICE_CENTS:
            problems.append("regulated price out of range")
        if self.sante_100_class is not None and self.care_domain not in SANTE_100_DOMAINS:
            problems.append("a 100 % Santé class applies to optics, hearing aids and dental care only")
        if self.sante_100_class is Sante100Class.A and self.regulated_price_cents is None:
            problems.append("a class A line needs its regulated price")
        if problems:
            raise ValidationFailed("; ".join(problems))

    @property
    def price_cents(self) -> int:
        return self.quantity * self.unit_price_cents

    @property
    def over_regulated_price(self) -> bool:
        return self.regulated_price_cents is not None and self.unit_price_cents > self.regulated_price_cents


@dataclass(frozen=True)
class CeilingKey:
    care_domain: CareDomain
    year: int


@dataclass(frozen=True)
class LineQuote:
    price_cents: int
    amo_cents: int
    insurer_cents: int
    remainder_cents: int
    limited_by: Limit | None
    over_regulated_price: bool
    # The yearly ceiling this line counts against, if any, and what it takes of it.
    ceiling: CeilingKey | None = None
    ceiling_consumed_cents: int = 0


@dataclass(frozen=True)
class Quote:
    lines: tuple[LineQuote, ...]
    # For each ceiling the lines touched: what is left after these lines.
    remaining_after: Mapping[CeilingKey, int]

    @property
    def price_cents(self) -> int:
        return sum(line.price_cents for line in self.lines)

    @property
    def amo_cents(self) -> int:
        return sum(line.amo_cents for line in self.lines)

    @property
    def insurer_cents(self) -> int:
        return sum(line.insurer_cents for line in self.lines)

    @property
    def remainder_cents(self) -> int:
        return sum(line.remainder_cents for line in self.lines)

    def consumed(self) -> dict[CeilingKey, int]:
        """Ceiling consumption of these lines, per (domain, year), zero entries left out."""
        totals: dict[CeilingKey, int] = {}
        for line in self.lines:
            if line.ceiling is not None and line.ceiling_consumed_cents:
                totals[line.ceiling] = totals.get(line.ceiling, 0) + line.ceiling_consumed_cents
        return totals


def percent_of(amount_cents: int, pct: int) -> int:
    """``pct`` % of a non-negative amount, rounded half up to the cent."""
    return (amount_cents * pct + 50) // 100


def quote_line(line: CareLine, formula: Formula | None, *, ceiling_left_cents: int | None) -> LineQuote:
    """One line's split. ``ceiling_left_cents`` is what is left of the applicable yearly ceiling
    (``None`` when the formula has none)."""
    price = line.price_cents
    ceiling = CeilingKey(line.care_domain, line.care_date.year)
    brss_total = line.quantity * line.brss_cents
    amo = min(percent_of(brss_total, line.amo_rate_pct), price)
    after_amo = price - amo
    over = line.over_regulated_price

    if formula is None:
        return LineQuote(price, amo, 0, after_amo, Limit.NOT_COVERED, over)

    if line.sante_100_class is Sante100Class.A and formula.sante_100_class_a:
        assert line.regulated_price_cents is not None  # CareLine.validate
        regulated_total = line.quantity * line.regulated_price_cents
        insurer = max(0, min(price, regulated_total) - amo)
        return LineQuote(price, amo, insurer, after_amo - insurer, None, over)

    promise = percent_of(brss_total, formula.brss_rate_pct) + line.quantity * formula.flat_amount_cents
    insurer = max(0, promise - amo)
    limit: Limit | None = None
    if insurer > after_amo:
        insurer, limit = after_amo, Limit.PRICE
    if (
        line.sante_100_class is Sante100Class.B
        and formula.class_b_ceiling_cents is not None
        and insurer > formula.class_b_ceiling_cents
    ):
        insurer, limit = formula.class_b_ceiling_cents, Limit.CLASS_B_CEILING
    if formula.yearly_ceiling_cents is None:
        return LineQuote(price, amo, insurer, after_amo - insurer, limit, over)
    left = max(0, ceiling_left_cents if ceiling_left_cents is not None else formula.yearly_ceiling_cents)
    if insurer > left:
        insurer, limit = left, Limit.YEARLY_CEILING
    return LineQuote(price, amo, insurer, after_amo - insurer, limit, over, ceiling, insurer)


def quote(
    lines: Sequence[CareLine],
    formulas: Mapping[CareDomain, Formula],
    *,
    consumed: Mapping[CeilingKey, int],
    in_force: Callable[[date], bool] | None = None,
) -> Quote:
    """Quote lines in order: each consumes what it takes of its (domain, year) ceiling before the
    next one is priced. ``consumed`` is what each ceiling had already consumed before these lines;
    lines on a day the contract is not ``in_force`` are not covered."""
    for line in lines:
        line.validate()
    left: dict[CeilingKey, int] = {}
    results = []
    for line in lines:
        formula = formulas.get(line.care_domain) if in_force is None or in_force(line.care_date) else None
        key = CeilingKey(line.care_domain, line.care_date.year)
        ceiling_left: int | None = None
        if formula is not None and formula.yearly_ceiling_cents is not None:
            if key not in left:
                left[key] = max(0, formula.yearly_ceiling_cents - consumed.get(key, 0))
            ceiling_left = left[key]
        result = quote_line(line, formula, ceiling_left_cents=ceiling_left)
        if ceiling_left is not None:
            left[key] = ceiling_left - result.ceiling_consumed_cents
        results.append(result)
    return Quote(lines=tuple(results), remaining_after=dict(left))
