"""Practices and health professionals.

A practice bills every insurer, so these tables are platform records, not insurer-owned ones: a
pharmacy in Lyon checks the rights of patients of any insurer. A practice is identified by its
FINESS number (establishments) or its Assurance Maladie number (individual surgeries); a
professional by their RPPS number (11 digits, Luhn key). A professional may work in several
practices; membership says which practices they may act for.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, new_id, str_enum, utcnow
from rempart.insurers.models import CareDomain


class Profession(StrEnum):
    PHARMACIST = "pharmacist"
    OPTICIAN = "optician"
    AUDIOPROSTHETIST = "audioprosthetist"
    DENTIST = "dentist"
    PHYSICIAN = "physician"
    MIDWIFE = "midwife"
    NURSE = "nurse"
    PHYSIOTHERAPIST = "physiotherapist"
    LAB = "lab"  # medical biology laboratory
    RADIOLOGY = "radiology"
    HOSPITAL = "hospital"
    TRANSPORT = "transport"  # ambulance, approved taxi


# The care domains a profession bills in. Detection uses it for baselines and the care flows may
# refuse a check outside a profession's domains.
PROFESSION_DOMAINS: dict[Profession, frozenset[CareDomain]] = {
    Profession.PHARMACIST: frozenset({CareDomain.PHAR}),
    Profession.OPTICIAN: frozenset({CareDomain.OPTI}),
    Profession.AUDIOPROSTHETIST: frozenset({CareDomain.AUDI}),
    Profession.DENTIST: frozenset({CareDomain.DENT}),
    Profession.PHYSICIAN: frozenset({CareDomain.CONS}),
    Profession.MIDWIFE: frozenset({CareDomain.CONS}),
    Profession.NURSE: frozenset({CareDomain.AUXM}),
    Profession.PHYSIOTHERAPIST: frozenset({CareDomain.AUXM}),
    Profession.LAB: frozenset({CareDomain.LABO}),
    Profession.RADIOLOGY: frozenset({CareDomain.RADI}),
    Profession.HOSPITAL: frozenset({CareDomain.HOSP, CareDomain.CONS, CareDomain.LABO, CareDomain.RADI}),
    Profession.TRANSPORT: frozenset({CareDomain.TRAN}),
}


class PracticeStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # by containment or by the platform: no client, no session works


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    finess: Mapped[str | None] = mapped_column(String(9), unique=True, nullable=True)
    am_number: Mapped[str | None] = mapped_column(String(9), unique=True, nullable=True)
    # Billing profession of the practice (a pharmacy, an optical shop...).
    profession: Mapped[Profession] = mapped_column(str_enum(Profession, length=20))
    status: Mapped[PracticeStatus] = mapped_column(str_enum(PracticeStatus, length=10), default=PracticeStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("finess IS NOT NULL OR am_number IS NOT NULL", name="identified"),
        CheckConstraint("finess IS NULL OR length(finess) = 9", name="finess_length"),
        CheckConstraint("am_number IS NULL OR length(am_number) = 9", name="am_number_length"),
    )


class ProfessionalStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Professional(Base):
    """A person identified by RPPS. No name is needed to bill or to check rights, so none is kept."""

    __tablename__ = "professionals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rpps: Mapped[str] = mapped_column(String(11), unique=True)
    profession: Mapped[Profession] = mapped_column(str_enum(Profession, length=20))
    status: Mapped[ProfessionalStatus] = mapped_column(
        str_enum(ProfessionalStatus, length=10), default=ProfessionalStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (CheckConstraint("length(rpps) = 11", name="rpps_length"),)


class PracticeMembership(Base):
    """A professional acting for a practice, from ``started_at`` until ``ended_at``."""

    __tablename__ = "practice_memberships"

    practice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"), primary_key=True)
    professional_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("professionals.id", ondelete="CASCADE"), primary_key=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_practice_memberships_professional", "professional_id"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="period_ordered"),
    )
