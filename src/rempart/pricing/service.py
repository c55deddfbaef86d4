"""Quotes for a checked patient, and the yearly ceilings that accepted claims consume.

Ceiling rows are locked before they are read when a claim consumes them (``SELECT ... FOR UPDATE``
on PostgreSQL; SQLite serialises writers and the row insert takes its write lock first), so two
claims accepted at once never spend the same euro twice; a CHECK constraint is the second wall.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from rempart.audit.care import record_practice_access
from rempart.audit.disclosures import Operation
from rempart.audit.models import Outcome
from rempart.db import is_postgresql
from rempart.eligibility.lookup import Cover, coverage
from rempart.eligibility.models import RightsCheck
from rempart.eligibility.service import access_check, domains_for, refuse_future_care
from rempart.identity.principal import PracticePrincipal
from rempart.insurers.models import CareDomain
from rempart.members.models import Contract
from rempart.pricing.engine import CareLine, CeilingKey, Formula, Quote, quote
from rempart.pricing.models import CeilingUsage


@dataclass(frozen=True)
class CheckedCover:
    """What a rights check gives access to: the contract's validity and the product's formulas."""

    check: RightsCheck
    valid_from: date
    valid_to: date | None
    covers: Mapping[CareDomain, Cover]

    @property
    def formulas(self) -> dict[CareDomain, Formula]:
        return {domain: cover.formula for domain, cover in self.covers.items()}

    def in_force(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def ceiling_of(self, domain: CareDomain) -> int | None:
        cover = self.covers.get(domain)
        return cover.guarantee.yearly_ceiling_cents if cover else None


def checked_cover(session: Session, *, check: RightsCheck) -> CheckedCover:
    contract = session.execute(
        select(Contract.product_id, Contract.start_date, Contract.end_date).where(
            Contract.insurer_id == check.insurer_id, Contract.id == check.contract_id
        )
    ).one()
    _code, covers = coverage(
        session,
        insurer_id=check.insurer_id,
        product_id=contract.product_id,
        beneficiary_id=check.beneficiary_id,
        day=check.care_date,
    )
    return CheckedCover(check=check, valid_from=contract.start_date, valid_to=contract.end_date, covers=covers)


def ceiling_keys(lines: Iterable[CareLine], cover: CheckedCover) -> set[CeilingKey]:
    return {
        CeilingKey(line.care_domain, line.care_date.year)
        for line in lines
        if cover.ceiling_of(line.care_domain) is not None
    }


def usage(
    session: Session,
    *,
    insurer_id: uuid.UUID,
    beneficiary_id: uuid.UUID,
    keys: Iterable[CeilingKey],
    lock: bool = False,
) -> dict[CeilingKey, int]:
    """What each of these ceilings has consumed; ``lock`` holds the rows until commit."""
    wanted = list(keys)
    if not wanted:
        return {}
    statement = select(CeilingUsage.care_domain, CeilingUsage.year, CeilingUsage.used_cents).where(
        CeilingUsage.insurer_id == insurer_id,
        CeilingUsage.beneficiary_id == beneficiary_id,
        or_(*(and_(CeilingUsage.care_domain == k.care_domain, CeilingUsage.year == k.year) for k in wanted)),
    )
    if lock:
        statement = statement.with_for_update()
    return {CeilingKey(domain, year): used for domain, year, used in session.execute(statement)}


def lock_ceilings(
    session: Session, *, insurer_id: uuid.UUID, beneficiary_id: uuid.UUID, ceilings: Mapping[CeilingKey, int]
) -> dict[CeilingKey, int]:
    """Create the usage rows these ceilings need, lock them and return what they consumed."""
    if not ceilings:
        return {}
    rows = [
        {
            "insurer_id": insurer_id,
            "beneficiary_id": beneficiary_id,
            "care_domain": key.care_domain,
            "year": key.year,
            "ceiling_cents": ceiling,
            "used_cents": 0,
        }
        for key, ceiling in sorted(ceilings.items(), key=lambda item: (item[0].care_domain, item[0].year))
    ]
    dialect_insert = postgresql.insert if is_postgresql(session) else sqlite.insert
    session.execute(dialect_insert(CeilingUsage).on_conflict_do_nothing(), rows)
    return usage(session, insurer_id=insurer_id, beneficiary_id=beneficiary_id, keys=ceilings, lock=True)


def consume_ceilings(
    session: Session,
    *,
    insurer_id: uuid.UUID,
    beneficiary_id: uuid.UUID,
    consumed: Mapping[CeilingKey, int],
    ceilings: Mapping[CeilingKey, int],
) -> None:
    """Add an accepted claim's consumption (rows locked by ``lock_ceilings`` in this transaction)."""
    for key, amount in consumed.items():
        session.execute(
            update(CeilingUsage)
            .where(
                CeilingUsage.insurer_id == insurer_id,
                CeilingUsage.beneficiary_id == beneficiary_id,
                CeilingUsage.care_domain == key.care_domain,
                CeilingUsage.year == key.year,
            )
            .values(used_cents=CeilingUsage.used_cents + amount, ceiling_cents=ceilings[key])
        )


def release_ceilings(
    session: Session, *, insurer_id: uuid.UUID, beneficiary_id: uuid.UUID, consumed: Mapping[CeilingKey, int]
) -> None:
    """Give back what a cancelled or corrected claim had consumed."""
    for key, amount in consumed.items():
        session.execute(
            update(CeilingUsage)
            .where(
                CeilingUsage.insurer_id == insurer_id,
                CeilingUsage.beneficiary_id == beneficiary_id,
                CeilingUsage.care_domain == key.care_domain,
                CeilingUsage.year == key.year,
            )
            .values(used_cents=CeilingUsage.used_cents - amount)
        )


@dataclass(frozen=True)
class QuoteResult:
    check: RightsCheck
    quote: Quote
    ceilings: dict[CeilingKey, tuple[int, int]]  # key -> (ceiling, consumed before these lines)


def quote_for_check(
    *, session: Session, caller: PracticePrincipal, check_id: uuid.UUID, lines: Sequence[CareLine], now: datetime
) -> QuoteResult:
    """Price lines of care for the patient of a rights check (a simulation: nothing is consumed);
    the access event is committed before this returns. Care dated after today is refused
    (``care-date-in-future``): a quote prices care given; care to come asks for a prior approval."""
    domains_for(caller, sorted({line.care_domain for line in lines}))
    refuse_future_care((line.care_date for line in lines), now)
    check = access_check(session, caller=caller, check_id=check_id, now=now)
    cover = checked_cover(session, check=check)
    keys = ceiling_keys(lines, cover)
    before = usage(session, insurer_id=check.insurer_id, beneficiary_id=check.beneficiary_id, keys=keys)
    result = quote(lines, cover.formulas, consumed=before, in_force=cover.in_force)
    record_practice_access(
        session,
        caller=caller,
        operation=Operation.QUOTE,
        outcome=Outcome.DISCLOSED,
        now=now,
        insurer_id=check.insurer_id,
        beneficiary_id=check.beneficiary_id,
        reference=check.id,
    )
    ceilings = {}
    for key in keys:
        ceiling = cover.ceiling_of(key.care_domain)
        assert ceiling is not None  # ceiling_keys keeps domains with a ceiling only
        ceilings[key] = (ceiling, before.get(key, 0))
    session.commit()
    return QuoteResult(check=check, quote=result, ceilings=ceilings)
