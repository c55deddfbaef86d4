"""The reference nomenclature: the act and device codes the platform accepts per care domain, with
their reimbursement base, the compulsory scheme's rate and the 100 % Santé facts, by version.

Platform-wide data, not an insurer's: no ``insurer_id`` and no row-level security. A version applies
to care from its ``effective_from`` until the next version's; loading a newer one keeps the older.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, str_enum, utcnow
from rempart.insurers.models import CareDomain


class Sante100Class(StrEnum):
    # The values of rempart.pricing.engine.Sante100Class: the care flow compares them as strings.
    A = "A"  # regulated price (PLV or HLF), no remainder under a "contrat responsable"
    B = "B"  # free price


class DeviceKind(StrEnum):
    FRAME = "frame"
    LENS = "lens"
    HEARING_AID = "hearing_aid"


class Correction(StrEnum):
    """A lens's correction level: the responsible contract's ceilings depend on it."""

    SIMPLE = "simple"
    COMPLEX = "complex"
    VERY_COMPLEX = "very_complex"


class HearingClass(StrEnum):
    I = "I"  # noqa: E741  (the regulation's own name: class I, the 100 % Santé one)
    II = "II"


class NomenclatureVersion(Base):
    """One loaded file: its version, the day it applies from and a digest of its entries."""

    __tablename__ = "reference_versions"

    version: Mapped[str] = mapped_column(String(20), primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, unique=True)
    source: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the entries: a reload changes nothing
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NomenclatureEntry(Base):
    """One code of one version. ``effective_from`` repeats the version's so that a lookup reads one table."""

    __tablename__ = "reference_acts"

    version: Mapped[str] = mapped_column(ForeignKey("reference_versions.version"), primary_key=True)
    care_domain: Mapped[CareDomain] = mapped_column(str_enum(CareDomain, length=4), primary_key=True)
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date)
    label: Mapped[str] = mapped_column(String(200))
    base_cents: Mapped[int] = mapped_column(Integer)
    amo_rate_pct: Mapped[int] = mapped_column(Integer)
    sante_100_class: Mapped[Sante100Class | None] = mapped_column(str_enum(Sante100Class, length=1), nullable=True)
    regulated_price_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device_kind: Mapped[DeviceKind | None] = mapped_column(str_enum(DeviceKind, length=11), nullable=True)
    correction: Mapped[Correction | None] = mapped_column(str_enum(Correction, length=12), nullable=True)
    hearing_class: Mapped[HearingClass | None] = mapped_column(str_enum(HearingClass, length=2), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        CheckConstraint("base_cents >= 0", name="base_not_negative"),
        CheckConstraint("amo_rate_pct BETWEEN 0 AND 100", name="rate_is_a_percentage"),
        CheckConstraint("regulated_price_cents IS NULL OR regulated_price_cents >= 0", name="price_not_negative"),
        CheckConstraint(
            "sante_100_class IS NULL OR sante_100_class <> 'A' OR regulated_price_cents IS NOT NULL",
            name="class_a_has_a_regulated_price",
        ),
        # The hot path: the codes of a claim's lines in the version in force on the day of care.
        Index("ix_reference_acts_lookup", "care_domain", "code", "effective_from"),
    )
