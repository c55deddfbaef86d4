"""Claims at the service level: adjudication reason codes, the lifecycle, corrections, cancellation,
the insurer's review, and one claim per Idempotency-Key even when 20 arrive at once."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from rempart.approvals.models import ApprovalStatus, PriorApproval
from rempart.approvals.service import ApprovalRequest, request_approval
from rempart.claims.models import Claim, ClaimReason, ClaimStatus, ReviewReason
from rempart.claims.service import (
    ClaimClosed,
    ClaimNotFound,
    ClaimNotPending,
    ClaimOutcome,
    ClaimRequest,
    cancel_claim,
    correct_claim,
    insurer_claims,
    practice_claims,
    review_claim,
    submit_claim,
    view_claim,
)
from rempart.demo import PRODUCTS, product_guarantees
from rempart.eligibility.service import CareDateInFuture, CareDomainOutsideProfession, RightsAnswer
from rempart.errors import ValidationFailed
from rempart.idempotency import IdempotencyKeyReused
from rempart.identity.principal import PracticePrincipal
from rempart.insurers.models import CareDomain
from rempart.insurers.service import update_product
from rempart.pricing.engine import CareLine, CeilingKey
from rempart.pricing.models import CeilingUsage
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
    consultation,
    frames,
    medicine,
    practice_principal,
    rights_check,
    unit,
)
from tests.factories import TODAY


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime, members=25)


def submit(
    world: World,
    caller: PracticePrincipal,
    check: RightsAnswer,
    lines: list[CareLine],
    *,
    key: str | None = None,
    approval_number: str | None = None,
    **kwargs: object,
) -> ClaimOutcome:
    with unit(world.runtime) as session:
        return submit_claim(
            session=session,
            caller=caller,
            request=ClaimRequest(check.check_id, tuple(lines), approval_number),
            idempotency_key=key or uuid.uuid4().hex,
            now=NOW,
            **kwargs,  # type: ignore[arg-type]
        )


def approve(world: World, caller: PracticePrincipal, check: RightsAnswer, lines: list[CareLine]) -> PriorApproval:
    with unit(world.runtime) as session:
        return request_approval(
            session=session,
            caller=caller,
            request=ApprovalRequest(check.check_id, CareDomain.OPTI, tuple(lines)),
            idempotency_key=uuid.uuid4().hex,
            now=NOW,
        ).approval


def usage_of(world: World, check: RightsAnswer, domain: CareDomain = CareDomain.OPTI) -> int:
    with world.runtime.sessions() as session:
        used = session.scalar(
            select(CeilingUsage.used_cents).where(
                CeilingUsage.beneficiary_id == check.beneficiary_id,
                CeilingUsage.care_domain == domain,
                CeilingUsage.year == TODAY.year,
            )
        )
    return used or 0


def count_claims(world: World) -> int:
    with world.runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(Claim)) or 0


def test_a_pharmacy_claim_is_accepted_with_the_insurers_share(world: World) -> None:
    pharmacist = practice_principal(world.runtime, Profession.PHARMACIST)
    check = rights_check(world, pharmacist, world.patient())

    claim = submit(world, pharmacist, check, [medicine(price=1_000)]).claim

    assert (claim.status, claim.reason_code) == (ClaimStatus.ACCEPTED, None)
    assert (claim.price_cents, claim.amo_cents, claim.insurer_cents, claim.remainder_cents) == (1_000, 650, 350, 0)
    assert [e.operation for e in world.events()][-1] == "claim_submit"


def test_optics_without_an_approval_is_rejected_and_with_one_is_accepted_and_consumes_the_ceiling(
    world: World,
) -> None:
    optician = practice_principal(world.runtime, Profession.OPTICIAN)
    check = rights_check(world, optician, world.patient(product="CONFORT"))
    approval = approve(world, optician, check, [frames()])

    without = submit(world, optician, check, [frames()]).claim
    with_it = submit(world, optician, check, [frames()], approval_number=approval.approval_number).claim

    assert (without.status, without.reason_code, without.insurer_cents) == (
        ClaimStatus.REJECTED,
        ClaimReason.APPROVAL_MISSING,
        0,
    )
    assert (with_it.status, with_it.insurer_cents) == (ClaimStatus.ACCEPTED, 15_007)
    assert usage_of(world, check) == 15_007
    reused = submit(world, optician, check, [frames(price=24_000)], approval_number=approval.approval_number).claim
    assert reused.reason_code is ClaimReason.APPROVAL_ALREADY_USED


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([frames(price=90_000)], ClaimReason.APPROVAL_EXCEEDED),
        ([class_a_glasses(price=3_500)], ClaimReason.PRICE_OVER_REGULATED_LIMIT),
    ],
)
def test_approval_and_price_rules_reject_with_their_reason_code(
    world: World, lines: list[CareLine], reason: ClaimReason
) -> None:
    optician = practice_principal(world.runtime, Profession.OPTICIAN)
    check = rights_check(world, optician, world.patient(product="PREMIUM"))
    approval = approve(world, optician, check, [frames(price=20_000)])

    claim = submit(world, optician, check, lines, approval_number=approval.approval_number).claim

    assert (claim.status, claim.reason_code) == (ClaimStatus.REJECTED, reason)
    assert claim.insurer_cents == 0
    assert usage_of(world, check) == 0


def test_care_dated_after_today_is_refused_at_submission_and_nothing_is_stored(world: World) -> None:
    """Even within the approval's validity: a claim bills care given (a few minutes of clock skew
    at midnight aside), so care in 2030 is a 422 ``care-date-in-future``, not a rejected claim."""
    optician = practice_principal(world.runtime, Profession.OPTICIAN)
    check = rights_check(world, optician, world.patient(product="PREMIUM"))
    approval = approve(world, optician, check, [frames(price=20_000)])

    for day in (TODAY + timedelta(days=1), TODAY + timedelta(days=30), date(2030, 1, 2)):
        with pytest.raises(CareDateInFuture) as refused:
            submit(world, optician, check, [frames(day)], approval_number=approval.approval_number)
        assert refused.value.status == 422
        assert refused.value.type.endswith("/care-date-in-future")
    assert count_claims(world) == 0
    assert usage_of(world, check) == 0


def test_an_approval_of_another_patient_or_practice_does_not_fit(world: World) -> None:
    optician = practice_principal(world.runtime, Profession.OPTICIAN)
    colleague = practice_principal(world.runtime, Profession.OPTICIAN)
    first, second = world.patients(product="PREMIUM")[:2]
    mine = rights_check(world, optician, first)
    theirs = rights_check(world, colleague, first)
    other_patient = rights_check(world, optician, second)
    approval = approve(world, optician, mine, [frames()])

    by_colleague = submit(world, colleague, theirs, [frames()], approval_number=approval.approval_number).claim
    for_other = submit(world, optician, other_patient, [frames()], approval_number=approval.approval_number).claim
    unknown = submit(world, optician, mine, [frames()], approval_number="OPTI-000000000000").claim

    for claim in (by_colleague, for_other, unknown):
        assert (claim.status, claim.reason_code) == (ClaimStatus.REJECTED, ClaimReason.APPROVAL_MISMATCH)


def test_a_professional_bills_only_in_the_domains_of_their_profession(world: World) -> None:
    optician = practice_principal(world.runtime, Profession.OPTICIAN)
    check = rights_check(world, optician, world.patient())

    with pytest.raises(CareDomainOutsideProfession):
        submit(world, optician, check, [frames(), consultation()])
    assert count_claims(world) == 0


def test_care_outside_the_contract_and_the_same_care_billed_twice_are_rejected(world: World) -> None:
    pharmacist = practice_principal(world.runtime, Profession.PHARMACIST)
    patient = world.patient()
    check = rights_check(world, pharmacist, patient)

    early = submit(world, pharmacist, check, [medicine(patient.contract_start - timedelta(days=3))]).claim
    first = submit(world, pharmacist, check, [medicine()]).claim
    twice = submit(world, pharmacist, check, [medicine()]).claim

    assert early.reason_code is ClaimReason.NOT_COVERED_AT_DATE
    assert first.status is ClaimStatus.ACCEPTED
    assert (twice.status, twice.reason_code) == (ClaimStatus.REJECTED, ClaimReason.DUPLICATE_CLAIM)


def test_an_exhausted_ceiling_rejects_the_claim_but_class_a_stays_fully_paid(world: World) -> None:
    optician = practice_principal(world.runtime, Profession.OPTICIAN)
    check = rights_check(world, optician, world.patient(product="CONFORT"))  # optics ceiling: 300 €
    approval = approve(world, optician, check, [frames()])
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

    exhausted = submit(world, optician, check, [frames()], approval_number=approval.approval_number).claim
    class_a = approve(world, optician, check, [class_a_glasses()])
    glasses = submit(world, optician, check, [class_a_glasses()], approval_number=class_a.approval_number).claim

    assert (exhausted.status, exhausted.reason_code) == (ClaimStatus.REJECTED, ClaimReason.CEILING_EXHAUSTED)
    # Class A (100 % Santé) is outside the ceilings: paid up to the regulated price, nothing left to pay.
    assert (glasses.status, glasses.insurer_cents, glasses.remainder_cents) == (ClaimStatus.ACCEPTED, 2_460, 0)
    assert usage_of(world, check) == 30_000


def test_a_claim_over_the_review_threshold_waits_for_a_claims_agent(world: World) -> None:
    physician = practice_principal(world.runtime, Profession.PHYSICIAN)
    check = rights_check(world, physician, world.patient(product="PREMIUM"))
    agent = claims_agent(world.insurer)

    pending = submit(world, physician, check, [consultation(price=10_000)], review_threshold_cents=5_000).claim
    other = submit(world, physician, check, [consultation(price=9_000)], review_threshold_cents=5_000).claim

    assert (pending.status, pending.reason_code, pending.insurer_cents) == (
        ClaimStatus.PENDING_REVIEW,
        ClaimReason.MANUAL_REVIEW,
        6_900,
    )
    with unit(world.runtime) as session:
        waiting = insurer_claims(session, staff=agent, now=NOW, status=ClaimStatus.PENDING_REVIEW)
        assert {c.id for c in waiting} == {pending.id, other.id}
        keys = world.runtime.keys
        accepted = review_claim(session=session, keys=keys, staff=agent, claim_id=pending.id, accept=True, now=NOW)
        rejected = review_claim(
            session=session,
            keys=keys,
            staff=agent,
            claim_id=other.id,
            accept=False,
            reason=ReviewReason.DOCUMENTS_MISSING,
            now=NOW,
        )
    assert (accepted.status, accepted.insurer_cents, accepted.decided_by) == (
        ClaimStatus.ACCEPTED,
        6_900,
        agent.account_id,
    )
    assert (rejected.status, rejected.reason_code, rejected.insurer_cents) == (
        ClaimStatus.REJECTED,
        ClaimReason.REJECTED_BY_INSURER,
        0,
    )
    with pytest.raises(ClaimNotPending), unit(world.runtime) as session:
        review_claim(
            session=session,
            keys=world.runtime.keys,
            staff=agent,
            claim_id=pending.id,
            accept=False,
            reason=ReviewReason.OTHER,
            comment="Decided twice, by mistake",
            now=NOW,
        )


def test_a_corrected_resubmission_supersedes_the_rejected_claim(world: World) -> None:
    optician = practice_principal(world.runtime, Profession.OPTICIAN)
    check = rights_check(world, optician, world.patient(product="CONFORT"))
    rejected = submit(world, optician, check, [frames()]).claim
    approval = approve(world, optician, check, [frames()])
    fixed = ClaimRequest(check.check_id, (frames(),), approval.approval_number)

    outcomes = []
    for _ in range(2):
        with unit(world.runtime) as session:
            outcomes.append(
                correct_claim(
                    session=session,
                    caller=optician,
                    claim_id=rejected.id,
                    request=fixed,
                    idempotency_key="fix-1",
                    now=NOW,
                )
            )

    first, again = outcomes
    assert (first.claim.status, first.claim.replaces_id) == (ClaimStatus.ACCEPTED, rejected.id)
    assert again.replayed
    assert again.claim.id == first.claim.id
    with unit(world.runtime) as session:
        assert view_claim(session=session, caller=optician, claim_id=rejected.id, now=NOW).status is (
            ClaimStatus.SUPERSEDED
        )
    with pytest.raises(ClaimClosed), unit(world.runtime) as session:
        correct_claim(
            session=session, caller=optician, claim_id=rejected.id, request=fixed, idempotency_key="fix-2", now=NOW
        )


def test_cancelling_an_accepted_claim_gives_back_the_ceiling_and_the_approval(world: World) -> None:
    optician = practice_principal(world.runtime, Profession.OPTICIAN)
    check = rights_check(world, optician, world.patient(product="CONFORT"))
    approval = approve(world, optician, check, [frames()])
    claim = submit(world, optician, check, [frames()], approval_number=approval.approval_number).claim
    assert usage_of(world, check) == 15_007

    for _ in range(2):
        with unit(world.runtime) as session:
            assert cancel_claim(session=session, caller=optician, claim_id=claim.id, now=NOW).status is (
                ClaimStatus.CANCELLED
            )

    assert usage_of(world, check) == 0
    again = submit(world, optician, check, [frames()], approval_number=approval.approval_number).claim
    assert again.status is ClaimStatus.ACCEPTED
    with world.runtime.sessions() as session:
        reloaded = session.get_one(PriorApproval, (approval.insurer_id, approval.id))
        assert (reloaded.status, reloaded.claim_id) == (ApprovalStatus.GRANTED, again.id)


def test_a_practice_sees_its_own_claims_only(world: World) -> None:
    pharmacist = practice_principal(world.runtime, Profession.PHARMACIST)
    stranger = practice_principal(world.runtime, Profession.PHARMACIST)
    check = rights_check(world, pharmacist, world.patient())
    claim = submit(world, pharmacist, check, [medicine()]).claim

    with unit(world.runtime) as session:
        assert [c.id for c in practice_claims(session, caller=pharmacist, now=NOW)] == [claim.id]
        assert list(practice_claims(session, caller=stranger, now=NOW)) == []
    for attempt in (view_claim, cancel_claim):
        with pytest.raises(ClaimNotFound), unit(world.runtime) as session:
            attempt(session=session, caller=stranger, claim_id=claim.id, now=NOW)


def test_the_same_key_with_another_body_is_refused(world: World) -> None:
    pharmacist = practice_principal(world.runtime, Profession.PHARMACIST)
    check = rights_check(world, pharmacist, world.patient())
    submit(world, pharmacist, check, [medicine()], key="k1")

    with pytest.raises(IdempotencyKeyReused):
        submit(world, pharmacist, check, [medicine(price=2_000)], key="k1")
    assert count_claims(world) == 1


def test_twenty_identical_submissions_at_once_make_one_claim(world: World) -> None:
    pharmacist = practice_principal(world.runtime, Profession.PHARMACIST)
    check = rights_check(world, pharmacist, world.patient())
    start = threading.Barrier(20)

    def one(_: int) -> tuple[uuid.UUID, bool]:
        start.wait()
        outcome = submit(world, pharmacist, check, [medicine()], key="same-key-20")
        return outcome.claim.id, outcome.replayed

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))

    assert len({claim_id for claim_id, _ in results}) == 1
    assert sum(not replayed for _, replayed in results) == 1
    assert count_claims(world) == 1
    with world.runtime.sessions() as session:
        assert session.scalars(select(Claim.status)).all() == [ClaimStatus.ACCEPTED]


def test_claims_racing_on_one_ceiling_never_consume_more_than_it(world: World) -> None:
    optician_a = practice_principal(world.runtime, Profession.OPTICIAN)
    patient = world.patient(product="CONFORT")
    checks, approvals = [], []
    for _ in range(4):
        caller = practice_principal(world.runtime, Profession.OPTICIAN)
        check = rights_check(world, caller, patient)
        checks.append((caller, check))
        approvals.append(approve(world, caller, check, [frames(price=26_000)]))
    start = threading.Barrier(4)

    def one(i: int) -> Claim:
        caller, check = checks[i]
        start.wait()
        return submit(world, caller, check, [frames(price=26_000)], approval_number=approvals[i].approval_number).claim

    with ThreadPoolExecutor(max_workers=4) as pool:
        claims = list(pool.map(one, range(4)))

    paid = sum(c.insurer_cents for c in claims if c.status is ClaimStatus.ACCEPTED)
    assert paid == usage_of(world, checks[0][1]) <= 30_000
    assert sorted(c.status for c in claims).count(ClaimStatus.ACCEPTED) >= 2
    assert optician_a.practice_id not in {c.practice_id for c in claims}
    assert {c.reason_code for c in claims if c.status is ClaimStatus.REJECTED} <= {
        ClaimReason.CEILING_EXHAUSTED,
        ClaimReason.APPROVAL_EXCEEDED,
    }


def test_care_dated_outside_the_years_a_ceiling_holds_is_refused_as_invalid_and_nothing_is_stored(
    world: World,
) -> None:
    # An insurer may cap any domain by a yearly ceiling, also one billed without prior approval.
    guarantees = [
        replace(spec, yearly_ceiling_cents=50_000) if spec.care_domain is CareDomain.PHAR else spec
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
    pharmacist = practice_principal(world.runtime, Profession.PHARMACIST)
    patient = next(r for r in world.patients(product="CONFORT") if r.contract_end is None)
    check = rights_check(world, pharmacist, patient)

    # A typing slip in the year: a clear refusal, not an internal error.
    with pytest.raises(ValidationFailed, match="date of care"):
        submit(world, pharmacist, check, [medicine(date(2201, 1, 1))])

    assert count_claims(world) == 0
    assert submit(world, pharmacist, check, [medicine()]).claim.status is ClaimStatus.ACCEPTED


def test_the_same_care_billed_at_once_under_different_keys_is_accepted_once(world: World) -> None:
    # Two workstations of one pharmacy bill the same prescription at the same moment, or practice
    # software retries with a new key: one claim pays, the others are duplicates.
    pharmacist = practice_principal(world.runtime, Profession.PHARMACIST)
    check = rights_check(world, pharmacist, world.patient())
    start = threading.Barrier(6)

    def one(i: int) -> Claim:
        start.wait()
        return submit(world, pharmacist, check, [medicine()], key=f"workstation-{i}").claim

    with ThreadPoolExecutor(max_workers=6) as pool:
        claims = list(pool.map(one, range(6)))

    assert sorted(c.status for c in claims) == [ClaimStatus.ACCEPTED] + [ClaimStatus.REJECTED] * 5
    assert {c.reason_code for c in claims if c.status is ClaimStatus.REJECTED} == {ClaimReason.DUPLICATE_CLAIM}


def test_two_corrections_of_one_claim_at_once_make_one_and_the_other_is_told_the_claim_is_closed(
    world: World,
) -> None:
    optician = practice_principal(world.runtime, Profession.OPTICIAN)
    check = rights_check(world, optician, world.patient(product="CONFORT"))
    rejected = submit(world, optician, check, [frames()]).claim
    approval = approve(world, optician, check, [frames()])
    fixed = ClaimRequest(check.check_id, (frames(),), approval.approval_number)
    start = threading.Barrier(2)

    def one(i: int) -> ClaimOutcome | Exception:
        start.wait()
        try:
            with unit(world.runtime) as session:
                return correct_claim(
                    session=session,
                    caller=optician,
                    claim_id=rejected.id,
                    request=fixed,
                    idempotency_key=f"fix-{i}",
                    now=NOW,
                )
        except Exception as error:  # noqa: BLE001  (what each workstation gets back)
            return error

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, range(2)))

    made = [r for r in results if isinstance(r, ClaimOutcome)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(made) == 1, results
    assert [type(r) for r in refused] == [ClaimClosed]
    assert count_claims(world) == 2
