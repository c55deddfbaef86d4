"""What each yearly ceiling has consumed, per beneficiary, care domain and calendar year of care."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import CheckConstraint, Date, ForeignKeyConstraint, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, str_enum
from rempart.insurers.models import CareDomain
from rempart.pricing.engine import CareLine, Limit, LineQuote, Sante100Class


class CeilingUsage(Base):
    """Consumed by accepted claims, given back when one is cancelled or corrected.

    ``ceiling_cents`` is the ceiling in force when the row last grew, so that the database itself
    refuses consumption past it.
    """

    __tablename__ = "ceiling_usage"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    beneficiary_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    care_domain: Mapped[CareDomain] = mapped_column(str_enum(CareDomain, length=4), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    ceiling_cents: Mapped[int] = mapped_column(Integer)
    used_cents: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"], ["beneficiaries.insurer_id", "beneficiaries.id"], ondelete="CASCADE"
        ),
        CheckConstraint("used_cents >= 0", name="used_non_negative"),
        CheckConstraint("used_cents <= ceiling_cents", name="within_ceiling"),
        CheckConstraint("year BETWEEN 2000 AND 2200", name="year_range"),
    )


class PricedLineColumns:
    """The columns of a priced line of care, shared by approval lines and claim lines."""

    line_no: Mapped[int] = mapped_column(Integer)
    care_domain: Mapped[CareDomain] = mapped_column(str_enum(CareDomain, length=4))
    act_code: Mapped[str] = mapped_column(String(16))
    care_date: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    brss_cents: Mapped[int] = mapped_column(Integer)
    amo_rate_pct: Mapped[int] = mapped_column(Integer)
    sante_100_class: Mapped[Sante100Class | None] = mapped_column(str_enum(Sante100Class, length=1), nullable=True)
    regulated_price_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    price_cents: Mapped[int] = mapped_column(Integer)
    amo_cents: Mapped[int] = mapped_column(Integer)
    insurer_cents: Mapped[int] = mapped_column(Integer)
    remainder_cents: Mapped[int] = mapped_column(Integer)
    ceiling_consumed_cents: Mapped[int] = mapped_column(Integer, default=0)
    limited_by: Mapped[Limit | None] = mapped_column(str_enum(Limit, length=16), nullable=True)

    @staticmethod
    def line_constraints(parent_column: str) -> tuple[CheckConstraint | PrimaryKeyConstraint, ...]:
        return (
            PrimaryKeyConstraint("insurer_id", parent_column, "line_no"),
            CheckConstraint("line_no BETWEEN 1 AND 99", name="line_no_range"),
            CheckConstraint("quantity BETWEEN 1 AND 999", name="quantity_range"),
            CheckConstraint("amo_rate_pct BETWEEN 0 AND 100", name="amo_rate_range"),
            CheckConstraint(
                "unit_price_cents >= 0 AND brss_cents >= 0 AND amo_cents >= 0 AND insurer_cents >= 0 "
                "AND remainder_cents >= 0 AND ceiling_consumed_cents >= 0",
                name="amounts_non_negative",
            ),
            CheckConstraint("price_cents = quantity * unit_price_cents", name="price_is_quantity_times_unit"),
            CheckConstraint("amo_cents + insurer_cents + remainder_cents = price_cents", name="shares_add_up"),
            CheckConstraint("ceiling_consumed_cents <= insurer_cents", name="consumed_within_share"),
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

    @staticmethod
    def priced_columns(line: CareLine, priced: LineQuote) -> dict[str, object]:
        return {
            "care_domain": line.care_domain,
            "act_code": line.act_code,
            "care_date": line.care_date,
            "quantity": line.quantity,
            "unit_price_cents": line.unit_price_cents,
            "brss_cents": line.brss_cents,
            "amo_rate_pct": line.amo_rate_pct,
            "sante_100_class": line.sante_100_class,
            "regulated_price_cents": line.regulated_price_cents,
            "price_cents": priced.price_cents,
            "amo_cents": priced.amo_cents,
            "insurer_cents": priced.insurer_cents,
            "remainder_cents": priced.remainder_cents,
            "ceiling_consumed_cents": priced.ceiling_consumed_cents,
            "limited_by": priced.limited_by,
        }
