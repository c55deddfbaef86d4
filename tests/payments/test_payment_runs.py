"""Payment runs and remittances: one remittance per practice, atomic, and no claim ever paid twice —
not even when two runs start at the same moment."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from rempart.claims.models import Claim, ClaimStatus
from rempart.claims.service import ClaimClosed, ClaimRequest, cancel_claim, submit_claim
from rempart.eligibility.service import RightsAnswer
from rempart.idempotency import IdempotencyKeyReused
from rempart.identity.principal import PracticePrincipal
from rempart.payments.approval import do_ask_for_run
from rempart.payments.models import PaymentRun, RemittanceLine
from rempart.payments.service import (
    NothingDue,
    RemittanceNotFound,
    access_remittance,
    payment_run,
    practice_remittances,
    run_payments,
)
from rempart.pricing.engine import CareLine
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.eligibility.world import (
    NOW,
    World,
    build_world,
    claims_agent,
    medicine,
    practice_principal,
    rights_check,
    unit,
)
from tests.factories import TODAY


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime, members=20)


def bill(world: World, caller: PracticePrincipal, check: RightsAnswer, line: CareLine) -> Claim:
    with unit(world.runtime) as session:
        return submit_claim(
            session=session,
            caller=caller,
            request=ClaimRequest(check.check_id, (line,)),
            idempotency_key=uuid.uuid4().hex,
            now=NOW,
        ).claim


def accepted_claims(world: World, count: int) -> tuple[list[PracticePrincipal], list[Claim]]:
    """``count`` accepted pharmacy claims spread over two pharmacies."""
    pharmacies = [practice_principal(world.runtime, Profession.PHARMACIST) for _ in range(2)]
    claims = []
    for i, patient in enumerate(world.patients()[:count]):
        caller = pharmacies[i % 2]
        check = rights_check(world, caller, patient)
        claim = bill(world, caller, check, medicine(TODAY - timedelta(days=i % 3), price=1_000 + i))
        assert claim.status is ClaimStatus.ACCEPTED
        claims.append(claim)
    return pharmacies, claims


def test_a_run_pays_accepted_claims_up_to_the_cutoff_with_one_remittance_per_practice(world: World) -> None:
    pharmacies, claims = accepted_claims(world, 6)
    agent = claims_agent(world.insurer)

    with unit(world.runtime) as session:
        run = run_payments(session=session, staff=agent, cutoff=TODAY - timedelta(days=1), now=NOW)
    with unit(world.runtime) as session:
        _, remittances = payment_run(session, staff=agent, run_id=run.id)

    early = [c for c in claims if c.first_care_date <= TODAY - timedelta(days=1)]
    assert (run.claim_count, run.total_cents) == (len(early), sum(c.insurer_cents for c in early))
    assert run.remittance_count == len(remittances) == 2
    assert sum(r.total_cents for r in remittances) == run.total_cents
    with world.runtime.sessions() as session:
        statuses = dict(session.execute(select(Claim.id, Claim.status)).all())
    assert {statuses[c.id] for c in early} == {ClaimStatus.PAID}
    assert {statuses[c.id] for c in claims if c not in early} == {ClaimStatus.ACCEPTED}

    # Nothing left up to that day: no empty run, a 409 ``nothing-due``.
    with pytest.raises(NothingDue) as nothing, unit(world.runtime) as session:
        run_payments(session=session, staff=agent, cutoff=TODAY - timedelta(days=1), now=NOW)
    assert (nothing.value.status, nothing.value.slug) == (409, "nothing-due")
    with pytest.raises(NothingDue), unit(world.runtime) as session:
        do_ask_for_run(session, staff=agent, cutoff=TODAY - timedelta(days=1), now=NOW)
    with world.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PaymentRun)) == 1

    first_pharmacy = pharmacies[0]
    with unit(world.runtime) as session:
        listed = practice_remittances(session, caller=first_pharmacy)
        (remittance, amc) = listed[0]
        detail = access_remittance(session, caller=first_pharmacy, remittance_id=remittance.id, now=NOW)
        paid_here = {line.claim_id for line in detail.lines}
    assert amc == world.insurer.amc_number
    assert paid_here == {c.id for c in early if c.practice_id == first_pharmacy.practice_id}
    with pytest.raises(RemittanceNotFound), unit(world.runtime) as session:
        access_remittance(session, caller=pharmacies[1], remittance_id=remittance.id, now=NOW)


def test_a_paid_claim_can_no_longer_be_cancelled(world: World) -> None:
    pharmacies, claims = accepted_claims(world, 1)
    with unit(world.runtime) as session:
        run_payments(session=session, staff=claims_agent(world.insurer), cutoff=TODAY, now=NOW)

    with pytest.raises(ClaimClosed), unit(world.runtime) as session:
        cancel_claim(session=session, caller=pharmacies[0], claim_id=claims[0].id, now=NOW)


def test_two_runs_started_at_once_pay_each_claim_exactly_once(world: World) -> None:
    _, claims = accepted_claims(world, 8)
    agent = claims_agent(world.insurer)
    start = threading.Barrier(2)

    def one(_: int) -> PaymentRun | None:
        start.wait()
        try:
            with unit(world.runtime) as session:
                return run_payments(session=session, staff=agent, cutoff=TODAY, now=NOW)
        except NothingDue:  # the other run paid them all first: no empty run
            return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [r for r in pool.map(one, range(2)) if r is not None]

    assert sum(r.claim_count for r in runs) == len(claims)
    assert sum(r.total_cents for r in runs) == sum(c.insurer_cents for c in claims)
    with world.runtime.sessions() as session:
        lines = session.scalars(select(RemittanceLine.claim_id)).all()
        assert sorted(lines) == sorted(c.id for c in claims)
        paid = session.scalar(select(func.count()).select_from(Claim).where(Claim.status == ClaimStatus.PAID))
    assert paid == len(claims)


def test_the_same_idempotency_key_answers_with_the_first_run_and_another_day_is_refused(world: World) -> None:
    _, claims = accepted_claims(world, 2)
    agent = claims_agent(world.insurer)

    with unit(world.runtime) as session:
        first = do_ask_for_run(session, staff=agent, cutoff=TODAY, now=NOW, idempotency_key="run-1")
    with unit(world.runtime) as session:
        # Everything is paid now: without the key this would be "nothing due"; with it, the first run.
        again = do_ask_for_run(session, staff=agent, cutoff=TODAY, now=NOW, idempotency_key="run-1")
    with pytest.raises(IdempotencyKeyReused), unit(world.runtime) as session:
        do_ask_for_run(session, staff=agent, cutoff=TODAY - timedelta(days=1), now=NOW, idempotency_key="run-1")

    assert first.run is not None
    assert again.run is not None
    assert (first.replayed, again.replayed) == (False, True)
    assert again.run.id == first.run.id
    assert first.run.claim_count == len(claims)
    with world.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PaymentRun)) == 1
