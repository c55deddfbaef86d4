"""The insured person's own rights: per care domain, what their contract's product covers and how,
and what is left this year of each yearly ceiling (``/me/rights``).

The same reading as the rights check (``lookup.coverage``), for the person themself: their contract
is known from their account, nothing is typed. The reading is an access event
(``BENEFICIARY_SELF_VIEW``), committed with it, so the person's own look shows in their access log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.audit.disclosures import Operation
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.audit.service import Actor, record_access
from rempart.eligibility.lookup import coverage
from rempart.eligibility.service import DomainRights, care_day
from rempart.errors import NotFound
from rempart.insurers.models import CareDomain, Insurer
from rempart.members.models import Beneficiary, Contract
from rempart.tenancy import tenant


@dataclass(frozen=True)
class MyRights:
    """What a person sees of their own contract: never a name, a NIR or a date of birth."""

    insurer_name: str
    amc_number: str
    member_number: str
    birth_rank: int
    product_code: str | None
    day: date  # today, in Paris
    covered: bool  # the contract is in force today
    valid_from: date
    valid_to: date | None
    domains: list[DomainRights]


def my_rights(
    session: Session,
    *,
    insurer_id: uuid.UUID,
    beneficiary_id: uuid.UUID,
    account_id: uuid.UUID | None,
    device: str | None,
    address: str | None,
    now: datetime,
) -> MyRights:
    """The person's rights per care domain today and the ceilings left this year, recorded in their
    access log in the same transaction (committed before the answer is shown)."""
    today = care_day(now)
    with tenant(session, insurer_id):
        beneficiary = session.scalar(
            select(Beneficiary).where(Beneficiary.insurer_id == insurer_id, Beneficiary.id == beneficiary_id)
        )
        if beneficiary is None:
            raise NotFound("no such beneficiary")
        contract = session.get_one(Contract, (insurer_id, beneficiary.contract_id))
        insurer = session.get_one(Insurer, insurer_id)
        in_force = contract.valid_on(today)
        code, covers = (
            coverage(
                session,
                insurer_id=insurer_id,
                product_id=contract.product_id,
                beneficiary_id=beneficiary_id,
                day=today,
            )
            if in_force
            else (None, {})
        )
        domains = []
        for domain in CareDomain:
            cover = covers.get(domain)
            if cover is None:
                domains.append(DomainRights(domain, covered=False))
                continue
            domains.append(
                DomainRights(
                    domain,
                    covered=True,
                    formula=cover.formula,
                    remaining_ceiling_cents=cover.remaining_cents,
                    third_party_payment=cover.guarantee.third_party_payment,
                    prior_approval_required=cover.guarantee.prior_approval_required,
                )
            )
        rights = MyRights(
            insurer_name=insurer.name,
            amc_number=insurer.amc_number,
            member_number=contract.member_number,
            birth_rank=beneficiary.birth_rank,
            product_code=code,
            day=today,
            covered=in_force,
            valid_from=contract.start_date,
            valid_to=contract.end_date,
            domains=domains,
        )
        record_access(
            session,
            operation=Operation.BENEFICIARY_SELF_VIEW,
            actor=Actor(ActorKind.BENEFICIARY, id=account_id),
            channel=Channel.BENEFICIARY_PORTAL,
            outcome=Outcome.DISCLOSED,
            insurer_id=insurer_id,
            beneficiary_id=beneficiary_id,
            device=device,
            address=address,
            occurred_at=now,
        )
        session.commit()
    return rights
