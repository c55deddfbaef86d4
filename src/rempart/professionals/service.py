"""Practices, professionals and who may act for which practice."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum import luhn

from rempart.db import utcnow
from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.professionals.models import (
    Practice,
    PracticeMembership,
    Profession,
    Professional,
    ProfessionalStatus,
)


def is_valid_rpps(rpps: str) -> bool:
    """11 digits whose last one is the Luhn key of the first ten."""
    return len(rpps) == 11 and rpps.isdigit() and luhn.is_valid(rpps)


def is_valid_practice_number(number: str) -> bool:
    """FINESS and Assurance Maladie practice numbers are both 9 digits, ASCII ones: ``isdigit`` (and a
    schema's ``\\d``) also takes full-width and Arabic-Indic digits, the same number written otherwise."""
    return len(number) == 9 and number.isascii() and number.isdigit()


def create_practice(
    *,
    session: Session,
    name: str,
    profession: Profession,
    finess: str | None = None,
    am_number: str | None = None,
) -> Practice:
    if not finess and not am_number:
        raise ValidationFailed("a practice is identified by its FINESS or Assurance Maladie number")
    for number in (finess, am_number):
        if number is not None and not is_valid_practice_number(number):
            raise ValidationFailed("FINESS and Assurance Maladie numbers have 9 digits")
    taken = select(Practice.id).where((Practice.finess == finess) if finess else (Practice.am_number == am_number))
    if session.scalar(taken) is not None:
        raise Conflict("a practice with this number exists")
    practice = Practice(id=uuid.uuid4(), name=name, profession=profession, finess=finess, am_number=am_number)
    session.add(practice)
    session.flush()
    return practice


def register_professional(*, session: Session, rpps: str, profession: Profession) -> Professional:
    """The professional with this RPPS, created on first sight (RPPS is a national identifier)."""
    if not is_valid_rpps(rpps):
        raise ValidationFailed("an RPPS number has 11 digits and a valid key")
    existing = session.scalar(select(Professional).where(Professional.rpps == rpps))
    if existing is not None:
        if existing.profession != profession:
            raise Conflict("this RPPS number is registered with another profession")
        return existing
    professional = Professional(id=uuid.uuid4(), rpps=rpps, profession=profession)
    session.add(professional)
    session.flush()
    return professional


def attach_professional(
    *, session: Session, practice_id: uuid.UUID, professional_id: uuid.UUID, now: datetime | None = None
) -> PracticeMembership:
    membership = session.get(PracticeMembership, (practice_id, professional_id))
    if membership is not None:
        membership.ended_at = None
        return membership
    membership = PracticeMembership(
        practice_id=practice_id, professional_id=professional_id, started_at=now or utcnow()
    )
    session.add(membership)
    session.flush()
    return membership


def detach_professional(
    *, session: Session, practice_id: uuid.UUID, professional_id: uuid.UUID, now: datetime | None = None
) -> None:
    membership = session.get(PracticeMembership, (practice_id, professional_id))
    if membership is None or membership.ended_at is not None:
        raise NotFound("no such professional in this practice")
    membership.ended_at = now or utcnow()


def acting_professional(*, session: Session, practice_id: uuid.UUID, rpps: str) -> Professional:
    """The active professional with this RPPS, if they currently act for this practice.

    An RPPS unknown to Rempart and one that belongs to another practice answer the same, so a
    client cannot learn who works where.
    """
    professional = session.scalar(
        select(Professional)
        .join(PracticeMembership, PracticeMembership.professional_id == Professional.id)
        .where(
            Professional.rpps == rpps,
            Professional.status == ProfessionalStatus.ACTIVE,
            PracticeMembership.practice_id == practice_id,
            PracticeMembership.ended_at.is_(None),
        )
    )
    if professional is None:
        raise NotFound("this professional does not act for this practice")
    return professional
