"""Insurers (AMC, the tenants), their guarantee products and each product's formula per care domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Integer,
    String,
    UniqueConstraint,
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    guarantees: Mapped[list[Guarantee]] = relationship(
        back_populates="product", cascade="all, delete-orphan", lazy="selectin", order_by="Guarantee.care_domain"
    )

    __table_args__ = (
        ForeignKeyConstraint(["insurer_id"], ["insurers.id"], ondelete="CASCADE"),
        UniqueConstraint("insurer_id", "code"),
        CheckConstraint(
            f"attestation_days BETWEEN {MIN_ATTESTATION_DAYS} AND {MAX_ATTESTATION_DAYS}", name="attestation_days_range"
        ),
    )

    def guarantee(self, domain: CareDomain) -> Guarantee | None:
        return next((g for g in self.guarantees if g.care_domain == domain), None)


class Guarantee(Base):
    """A product's formula for one care domain.

    ``brss_rate_pct`` is the total reimbursement AMO + AMC as a percentage of the base
    reimbursement (BRSS), the way French guarantee tables are written ("300 % BRSS").
    """

    __tablename__ = "guarantees"

    insurer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    care_domain: Mapped[CareDomain] = mapped_column(str_enum(CareDomain, length=4), primary_key=True)
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
    )
