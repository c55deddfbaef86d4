"""Prior approvals at the service level: decisions, idempotency, cancellation, the insurer's review."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from rempart.approvals.models import ApprovalReason, ApprovalStatus, PriorApproval
from rempart.approvals.service import (
    ApprovalNotCancellable,
    ApprovalNotFound,
    ApprovalNotPending,
    ApprovalOutcome,
    ApprovalRequest,
    cancel_approval,
    decide_approval,
    pending_approvals,
    request_approval,
    view_approval,
)
from rempart.demo import PRODUCTS, product_guarantees
from rempart.errors import ValidationFailed
from rempart.idempotency import IdempotencyKeyReused
from rempart.identity.principal import PracticePrincipal
from rempart.insurers.models import CareDomain
from rempart.insurers.service import update_product
from rempart.pricing.engine import CareLine, CeilingKey
from rempart.pricing.service import consume_ceilings, lock_ceilings
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from rempart.tenancy import bind_tenant
from tests.eligibility.world import (
    NOW,
    World,
    build_world,
    claims_agent,
    class_a_glasses,
    frames,
    practice_principal,
    rights_check,
    unit,
)
from tests.factories import TODAY


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime, members=25)


@pytest.fixture
def optician(world: World) -> PracticePrincipal:
    return practice_principal(world.runtime, Profession.OPTICIAN)


def ask(
    world: World,
    caller: PracticePrincipal,
    check_id: object,
    lines: list[CareLine],
    key: str = "key-1",
    **kwargs: object,
) -> ApprovalOutcome:
    with unit(world.runtime) as session:
        return request_approval(
            session=session,
            caller=caller,
            request=ApprovalRequest(check_id=check_id, care_domain=CareDomain.OPTI, lines=tuple(lines)),  # type: ignore[arg-type]
            idempotency_key=key,
            now=NOW,
            **kwargs,  # type: ignore[arg-type]
        )


def count_approvals(world: World) -> int:
    with world.runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(PriorApproval)) or 0


def test_frames_within_the_guarantee_are_granted_with_a_number_amounts_and_an_expiry(
    world: World, optician: PracticePrincipal
) -> None:
    check = rights_check(world, optician, world.patient(product="CONFORT"))

    outcome = ask(world, optician, check.check_id, [frames()])

    approval = outcome.approval
    assert not outcome.replayed
    assert approval.status is ApprovalStatus.GRANTED
    assert approval.reason_code is None
    assert approval.approval_number.startswith("OPTI-")
    # 200 % of the 5-cent BRSS plus the 150 € flat amount, minus AMO's 3 cents.
    assert approval.granted_cents == approval.requested_cents == 15_007
    assert [line.granted_cents for line in approval.lines] == [15_007]
    assert approval.expires_on == TODAY + timedelta(days=180)
    assert [e.operation for e in world.events()][-1] == "prior_approval_request"


def test_the_same_idempotency_key_returns_the_first_approval_and_never_makes_a_second(
    world: World, optician: PracticePrincipal
) -> None:
    check = rights_check(world, optician, world.patient(product="CONFORT"))

    first = ask(world, optician, check.check_id, [frames()], key="same")
    again = ask(world, optician, check.check_id, [frames()], key="same")

    assert again.replayed
    assert again.approval.id == first.approval.id
    assert again.approval.approval_number == first.approval.approval_number
    assert count_approvals(world) == 1
    with pytest.raises(IdempotencyKeyReused):
        ask(world, optician, check.check_id, [frames(price=30_000)], key="same")
    assert count_approvals(world) == 1


def test_a_yearly_ceiling_partly_used_gives_a_partial_grant_and_an_exhausted_one_a_refusal(
    world: World, optician: PracticePrincipal
) -> None:
    check = rights_check(world, optician, world.patient(product="CONFORT"))

    partial = ask(world, optician, check.check_id, [frames(), frames()], key="two-frames").approval

    assert partial.status is ApprovalStatus.PARTIALLY_GRANTED
    assert partial.reason_code is ApprovalReason.CEILING_PARTLY_USED
    assert (partial.requested_cents, partial.granted_cents) == (30_014, 30_000)

    key = CeilingKey(CareDomain.OPTI, TODAY.year)
    with unit(world.runtime) as session:
        bind_tenant(session, world.insurer.id)
        lock_ceilings(session, insurer_id=world.insurer.id, beneficiary_id=check.beneficiary_id, ceilings={key: 30_000})
        consume_ceilings(
            session,
            insurer_id=world.insurer.id,
            beneficiary_id=check.beneficiary_id,
            consumed={key: 30_000},
            ceilings={key: 30_000},
        )
    refused = ask(world, optician, check.check_id, [frames()], key="after-ceiling").approval

    assert refused.status is ApprovalStatus.REFUSED
    assert refused.reason_code is ApprovalReason.CEILING_EXHAUSTED
    assert refused.granted_cents == 0


def test_refusals_carry_a_stable_reason_code(world: World, optician: PracticePrincipal) -> None:
    patient = world.patient(product="CONFORT")
    check = rights_check(world, optician, patient)

    over_plv = ask(world, optician, check.check_id, [class_a_glasses(price=3_500)], key="a").approval
    before_contract = ask(
        world, optician, check.check_id, [frames(patient.contract_start - timedelta(days=1))], key="b"
    ).approval

    assert (over_plv.status, over_plv.reason_code) == (
        ApprovalStatus.REFUSED,
        ApprovalReason.PRICE_OVER_REGULATED_LIMIT,
    )
    assert (before_contract.status, before_contract.reason_code) == (
        ApprovalStatus.REFUSED,
        ApprovalReason.NOT_COVERED_AT_DATE,
    )


def test_a_request_outside_the_approval_domains_is_refused_as_invalid(
    world: World, optician: PracticePrincipal
) -> None:
    check = rights_check(world, optician, world.patient())
    with pytest.raises(ValidationFailed), unit(world.runtime) as session:
        request_approval(
            session=session,
            caller=optician,
            request=ApprovalRequest(check.check_id, CareDomain.PHAR, (frames(),)),
            idempotency_key="k",
            now=NOW,
        )


def test_a_large_amount_waits_for_a_person_at_the_insurer(world: World, optician: PracticePrincipal) -> None:
    check = rights_check(world, optician, world.patient(product="CONFORT"))
    agent = claims_agent(world.insurer)

    pending = ask(world, optician, check.check_id, [frames()], review_threshold_cents=10_000).approval

    assert (pending.status, pending.reason_code, pending.granted_cents) == (
        ApprovalStatus.PENDING,
        ApprovalReason.MANUAL_REVIEW,
        0,
    )
    with unit(world.runtime) as session:
        assert [a.id for a in pending_approvals(session, staff=agent, now=NOW)] == [pending.id]
        granted = decide_approval(session=session, staff=agent, approval_id=pending.id, grant=True, now=NOW)
        assert (granted.status, granted.granted_cents, granted.decided_by) == (
            ApprovalStatus.GRANTED,
            15_007,
            agent.account_id,
        )
    with pytest.raises(ApprovalNotPending), unit(world.runtime) as session:
        decide_approval(session=session, staff=agent, approval_id=pending.id, grant=False, now=NOW)


def test_cancelling_is_harmless_twice_and_another_practice_sees_nothing(
    world: World, optician: PracticePrincipal
) -> None:
    check = rights_check(world, optician, world.patient(product="CONFORT"))
    approval = ask(world, optician, check.check_id, [frames()]).approval
    stranger = practice_principal(world.runtime, Profession.OPTICIAN)

    for _ in range(2):
        with unit(world.runtime) as session:
            cancelled = cancel_approval(session=session, caller=optician, approval_id=approval.id, now=NOW)
        assert cancelled.status is ApprovalStatus.CANCELLED
        assert cancelled.granted_cents == 0
    for attempt in (view_approval, cancel_approval):
        with pytest.raises(ApprovalNotFound), unit(world.runtime) as session:
            attempt(session=session, caller=stranger, approval_id=approval.id, now=NOW)


def test_a_refused_approval_cannot_be_cancelled(world: World, optician: PracticePrincipal) -> None:
    check = rights_check(world, optician, world.patient(product="CONFORT"))
    refused = ask(world, optician, check.check_id, [class_a_glasses(price=9_999)]).approval

    with pytest.raises(ApprovalNotCancellable), unit(world.runtime) as session:
        cancel_approval(session=session, caller=optician, approval_id=refused.id, now=NOW)


def test_a_grant_by_the_insurer_of_lines_a_ceiling_caps_is_a_partial_grant(
    world: World, optician: PracticePrincipal
) -> None:
    check = rights_check(world, optician, world.patient(product="CONFORT"))  # optics ceiling: 300 €
    agent = claims_agent(world.insurer)
    pending = ask(world, optician, check.check_id, [frames(), frames()], review_threshold_cents=10_000).approval
    assert pending.status is ApprovalStatus.PENDING

    with unit(world.runtime) as session:
        granted = decide_approval(session=session, staff=agent, approval_id=pending.id, grant=True, now=NOW)

    # Decided automatically, the same lines get "partially granted": a person granting them commits
    # the same capped amount, and the practice must read the same status and reason.
    assert (granted.requested_cents, granted.granted_cents) == (30_014, 30_000)
    assert (granted.status, granted.reason_code) == (
        ApprovalStatus.PARTIALLY_GRANTED,
        ApprovalReason.CEILING_PARTLY_USED,
    )


def test_under_a_yearly_ceiling_of_zero_optics_outside_class_a_are_refused_for_the_ceiling(
    world: World, optician: PracticePrincipal
) -> None:
    # An entry-level product: nothing for optics outside 100 % Santé class A.
    guarantees = [
        replace(spec, yearly_ceiling_cents=0) if spec.care_domain is CareDomain.OPTI else spec
        for spec in product_guarantees(*PRODUCTS["CONFORT"][1:])
    ]
    with world.runtime.sessions.begin() as session:
        update_product(
            session=session,
            insurer_id=world.insurer.id,
            code="CONFORT",
            name="Confort",
            guarantees=guarantees,
            today=TODAY,
        )
    check = rights_check(world, optician, world.patient(product="CONFORT"))

    refused = ask(world, optician, check.check_id, [frames()], key="frames").approval
    class_a = ask(world, optician, check.check_id, [class_a_glasses()], key="class-a").approval

    # The same answer as for a ceiling used up by earlier claims, with what was asked.
    assert (refused.status, refused.reason_code) == (ApprovalStatus.REFUSED, ApprovalReason.CEILING_EXHAUSTED)
    assert (refused.requested_cents, refused.granted_cents) == (15_007, 0)
    assert (class_a.status, class_a.granted_cents) == (ApprovalStatus.GRANTED, 2_460)
