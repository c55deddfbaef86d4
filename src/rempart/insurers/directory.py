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
from sqlalchemy.orm import Session

from rempart.insurers.models import Insurer, Product
from rempart.members.models import Beneficiary
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
