"""The platform's list of its insurers: who they are and how much they hold, never whom.

What the platform's operators (``rempart insurers list``, ``GET /api/v1/platform/insurers``) see of
an insurer: its AMC number, name, creation time and counts. No member's name, NIR or date of birth
is read: the counts are ``count(*)`` over each insurer's rows, each under its own tenant (row-level
security on PostgreSQL lets no query count every insurer's rows at once).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rempart.errors import Conflict
from rempart.insurers.models import Insurer, Product
from rempart.insurers.service import create_insurer
from rempart.members.models import Beneficiary
from rempart.protection.service import KeyService
from rempart.tenancy import tenant


@dataclass(frozen=True, slots=True)
class InsurerSummary:
    id: uuid.UUID
    amc_number: str
    name: str
    created_at: datetime
    products: int
    members: int  # beneficiaries: contract holders and the people their contracts cover


def _count(session: Session, model: type[Product] | type[Beneficiary], insurer_id: uuid.UUID) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.insurer_id == insurer_id)) or 0


def insurers_overview(session: Session) -> list[InsurerSummary]:
    """Every insurer, by AMC number, with its counts of products and members."""
    summaries = []
    for insurer in session.scalars(select(Insurer).order_by(Insurer.amc_number)):
        with tenant(session, insurer.id):
            products, members = _count(session, Product, insurer.id), _count(session, Beneficiary, insurer.id)
        summaries.append(
            InsurerSummary(
                id=insurer.id,
                amc_number=insurer.amc_number,
                name=insurer.name,
                created_at=insurer.created_at,
                products=products,
                members=members,
            )
        )
    return summaries


def do_create_insurer(*, session: Session, keys: KeyService, amc_number: str, name: str) -> InsurerSummary:
    """A new insurer and its keys, committed together (the platform admin's onboarding). Two
    requests for one AMC number at once: the unique constraint refuses the second, a Conflict too."""
    try:
        insurer = create_insurer(session=session, keys=keys, amc_number=amc_number, name=name)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("an insurer with this AMC number exists") from None
    return InsurerSummary(
        id=insurer.id,
        amc_number=insurer.amc_number,
        name=insurer.name,
        created_at=insurer.created_at,
        products=0,
        members=0,
    )
