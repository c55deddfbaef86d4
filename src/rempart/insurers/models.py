"""Insurers (AMC, the tenants), their guarantee products and each product's formula per care domain."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    Integer,
    String,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rempart.db import Base, UTCDateTime, new_id, str_enum, utcnow


class CareDomain(StrEnum):
    PHAR = "PHAR"  # pharmacy
    OPTI = "OPTI"  # optics
    AUDI = "AUDI"  # hearing aids
    DENT = "DENT"  # dental
    HOSP = "HOSP"  # hospital
    CONS = "CONS"  # consultations
    LABO = "LABO"  # lab tests
    AUXM = "AUXM"  # paramedics
    RADI = "RADI"  # imaging
    TRAN = "TRAN"  # transport


# Domains where 100 % Santé distinguishes class A (no remainder) from class B (free price).
SANTE_100_DOMAINS = frozenset({CareDomain.OPTI, CareDomain.AUDI, CareDomain.DENT})
# Domains where a prior approval ("prise en charge") may be asked for.
APPROVAL_DOMAINS = frozenset({CareDomain.OPTI, CareDomain.AUDI, CareDomain.DENT, CareDomain.HOSP})


# An offline attestation is valid from one day to eight weeks; two weeks unless the product says.
ATTESTATION_DAYS = 14
MIN_ATTESTATION_DAYS = 1
MAX_ATTESTATION_DAYS = 56

# A product's first formulas apply to care of any date: the day a version "since ever" starts.
SINCE_EVER = date(2000, 1, 1)


class Insurer(Base):
    """A complementary insurer: the tenant, and the GDPR controller of its members' data."""

    __tablename__ = "insurers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    amc_number: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (CheckConstraint("length(amc_number) BETWEEN 8 AND 10", name="amc_number_length"),)


class Product(Base):
    """A guarantee product ("contrat responsable", "formule confort"...) sold by one insurer."""

    __tablename__ = "products"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    # How long a member's signed offline attestation is valid: days to weeks, the insurer's choice.
    attestation_days: Mapped[int] = mapped_column(Integer, default=ATTESTATION_DAYS, server_default="14")
    # Closed to new members from this day ("fermé à la commercialisation"): a members file may put no
    # new contract on it; the contracts already on it go on, under its formulas, until they end.
    retired_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The product offered instead (same insurer, open): named when contracts use the retired one,
    # and by the members import's refusal. No foreign key (see migration 0016): the service checks it.
    successor_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    successor: Mapped[Product | None] = relationship(
        primaryjoin="and_(remote(Product.id) == foreign(Product.successor_id), "
        "remote(Product.insurer_id) == Product.insurer_id)",
        viewonly=True,
        lazy="selectin",
    )
    # A "contrat responsable" (art. L.871-1 and R.871-2 CSS): it covers 100 % Santé class A in full
    # and keeps to the regulation's floors and caps; the few that are not are taxed more. One flag
    # for the product, not per version of its formulas: it changes at once, like the name.
    responsible: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # Every version of every formula, past, current and scheduled (``formulas_on`` picks a day's).
    guarantees: Mapped[list[Guarantee]] = relationship(
        back_populates="product",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="(Guarantee.care_domain, Guarantee.valid_from)",
    )

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        UniqueConstraint("insurer_id", "code"),
        CheckConstraint(
            f"attestation_days BETWEEN {MIN_ATTESTATION_DAYS} AND {MAX_ATTESTATION_DAYS}", name="attestation_days_range"
        ),
    )

    def formulas_on(self, day: date) -> list[Guarantee]:
        """The formulas that apply to care on ``day``, one per covered care domain."""
        return [g for g in self.guarantees if g.applies_on(day)]

    def guarantee(self, domain: CareDomain, day: date) -> Guarantee | None:
        return next((g for g in self.formulas_on(day) if g.care_domain == domain), None)

    def scheduled_after(self, day: date) -> tuple[date, list[Guarantee]] | None:
        """The next change after ``day``: its effective date and the formulas from then on."""
        upcoming = sorted({g.valid_from for g in self.guarantees if g.valid_from > day})
        if not upcoming:
            return None
        return upcoming[0], self.formulas_on(upcoming[0])

    def retired(self, day: date) -> bool:
        return self.retired_on is not None and self.retired_on <= day


class Guarantee(Base):
    """A product's formula for one care domain.

    ``brss_rate_pct`` is the total reimbursement AMO + AMC as a percentage of the base
    reimbursement (BRSS), the way French guarantee tables are written ("300 % BRSS").

    A formula is versioned by the date of care it applies from: an edit with an effective date ends
    the current version the day before (``valid_to`` is exclusive) and starts the new one, so care
    given before the change is paid, quoted and approved under the formula of its own day.
    """

    __tablename__ = "guarantees"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    care_domain: Mapped[CareDomain] = mapped_column(str_enum(CareDomain, length=4), primary_key=True)
    valid_from: Mapped[date] = mapped_column(Date, primary_key=True, default=SINCE_EVER)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)  # exclusive; open-ended if None
    brss_rate_pct: Mapped[int] = mapped_column(Integer, default=100)
    flat_amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    yearly_ceiling_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sante_100_class_a: Mapped[bool] = mapped_column(Boolean, default=False)
    class_b_ceiling_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    third_party_payment: Mapped[bool] = mapped_column(Boolean, default=True)
    prior_approval_required: Mapped[bool] = mapped_column(Boolean, default=False)

    product: Mapped[Product] = relationship(back_populates="guarantees")

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id", "product_id"], ["products.insurer_id", "products.id"], ondelete="CASCADE"),
        CheckConstraint("brss_rate_pct BETWEEN 0 AND 1000", name="brss_rate_range"),
        CheckConstraint("flat_amount_cents >= 0", name="flat_amount_non_negative"),
        CheckConstraint("yearly_ceiling_cents IS NULL OR yearly_ceiling_cents >= 0", name="ceiling_non_negative"),
        CheckConstraint("class_b_ceiling_cents IS NULL OR class_b_ceiling_cents >= 0", name="class_b_non_negative"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_period"),
    )

    def applies_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)
