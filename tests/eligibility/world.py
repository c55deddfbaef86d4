"""A small world for the care flows' tests: an insurer with the demo products, a synthetic
population, practices with their professionals, and a claims agent — built through the services."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum import luhn

from rempart.audit.models import AccessEvent
from rempart.eligibility.service import RightsAnswer, RightsQuery, check_rights
from rempart.identity.permissions import Role, permissions_of
from rempart.identity.principal import Channel, PracticePrincipal, StaffPrincipal
from rempart.insurers.models import CareDomain, Insurer, Product
from rempart.members.models import BeneficiaryRole
from rempart.members.service import write_members
from rempart.members.validation import MemberRecord
from rempart.pricing.engine import CareLine, Sante100Class
from rempart.professionals.models import Profession
from rempart.professionals.service import attach_professional, create_practice, register_professional
from rempart.runtime import Runtime
from tests.factories import TODAY, make_insurer, population

NOW = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC)
_rng = random.SystemRandom()


def make_rpps() -> str:
    body = "10" + "".join(_rng.choice("0123456789") for _ in range(8))
    return body + luhn.calc_check_digit(body)


def make_practice_number() -> str:
    return "".join(_rng.choice("0123456789") for _ in range(9))


@dataclass
class World:
    runtime: Runtime
    insurer: Insurer
    records: list[MemberRecord]

    def in_force(self, record: MemberRecord, day: date = TODAY) -> bool:
        return record.contract_start <= day and (record.contract_end is None or day <= record.contract_end)

    def patients(self, *, product: str | None = None, role: BeneficiaryRole | None = None) -> list[MemberRecord]:
        return [
            r
            for r in self.records
            if self.in_force(r) and (product is None or r.product_code == product) and (role is None or r.role is role)
        ]

    def patient(self, *, product: str | None = None, role: BeneficiaryRole | None = None) -> MemberRecord:
        return self.patients(product=product, role=role)[0]

    def ended(self) -> MemberRecord:
        return next(r for r in self.records if r.contract_end is not None and r.contract_end < TODAY)

    def query(self, record: MemberRecord, **overrides: object) -> RightsQuery:
        query = RightsQuery(
            amc_number=self.insurer.amc_number,
            member_number=record.member_number,
            nir=record.nir,
            birth_date=record.birth_date,
            birth_rank=record.birth_rank,
        )
        return replace(query, **overrides)  # type: ignore[arg-type]

    def events(self) -> list[AccessEvent]:
        with self.runtime.sessions() as session:
            return list(session.scalars(select(AccessEvent).order_by(AccessEvent.occurred_at, AccessEvent.id)))


def build_world(runtime: Runtime, *, members: int = 40, seed: int = 7) -> World:
    insurer = make_insurer(runtime)
    records = population(members, seed=seed)
    with runtime.sessions.begin() as session:
        product_ids = {p.code: p.id for p in session.scalars(select(Product).where(Product.insurer_id == insurer.id))}
        write_members(
            session=session,
            keys=runtime.keys,
            insurer_id=insurer.id,
            records=records,
            product_ids=product_ids,
            today=TODAY,
        )
    return World(runtime=runtime, insurer=insurer, records=records)


def practice_principal(runtime: Runtime, profession: Profession = Profession.OPTICIAN) -> PracticePrincipal:
    """A professional acting for a new practice, through its software."""
    with runtime.sessions.begin() as session:
        practice = create_practice(
            session=session, name=f"Cabinet {profession.value}", profession=profession, finess=make_practice_number()
        )
        professional = register_professional(session=session, rpps=make_rpps(), profession=profession)
        attach_professional(session=session, practice_id=practice.id, professional_id=professional.id, now=NOW)
    roles = frozenset({Role.PRACTICE_SOFTWARE})
    return PracticePrincipal(
        practice_id=practice.id,
        professional_id=professional.id,
        rpps=professional.rpps,
        profession=profession,
        permissions=permissions_of(roles),
        channel=Channel.API,
        client_id=uuid.uuid4(),
        address="192.0.2.10",
        credential_ref="tok:test",
    )


def claims_agent(insurer: Insurer) -> StaffPrincipal:
    roles = frozenset({Role.CLAIMS_AGENT, Role.INSURER_ADMIN})
    return StaffPrincipal(
        insurer_id=insurer.id, account_id=uuid.uuid4(), roles=roles, permissions=permissions_of(roles)
    )


# -- lines of care a professional would send -----------------------------------------------------


def medicine(day: date = TODAY, *, price: int = 1_000, amo_rate: int = 65) -> CareLine:
    return CareLine(CareDomain.PHAR, "3400930000001", day, 1, price, price, amo_rate)


def frames(day: date = TODAY, *, price: int = 25_000) -> CareLine:
    # Class B frames: free price, a BRSS of 5 cents, AMO 60 %.
    return CareLine(CareDomain.OPTI, "2210546", day, 1, price, 5, 60, Sante100Class.B)


def class_a_glasses(day: date = TODAY, *, price: int = 3_000, regulated: int = 3_000) -> CareLine:
    return CareLine(CareDomain.OPTI, "2223345", day, 1, price, 900, 60, Sante100Class.A, regulated)


def consultation(day: date = TODAY, *, price: int = 3_000, brss: int = 3_000) -> CareLine:
    return CareLine(CareDomain.CONS, "G", day, 1, price, brss, 70)


def crown(day: date = TODAY, *, price: int = 50_000) -> CareLine:
    return CareLine(CareDomain.DENT, "HBLD036", day, 1, price, 12_000, 60)


def rights_check(world: World, caller: PracticePrincipal, record: MemberRecord, now: datetime = NOW) -> RightsAnswer:
    """A hit, as the professional does it at the counter before anything else."""
    with world.runtime.sessions.begin() as session:
        outcome = check_rights(
            session=session, keys=world.runtime.keys, caller=caller, query=world.query(record), now=now
        )
    assert isinstance(outcome, RightsAnswer), outcome
    return outcome


@contextmanager
def unit(runtime: Runtime) -> Iterator[Session]:
    """A session committed at the end, as a request handler uses it (services may roll it back
    themselves when they lose an idempotency race, which a ``begin()`` block would not allow)."""
    with runtime.sessions() as session:
        yield session
        session.commit()
