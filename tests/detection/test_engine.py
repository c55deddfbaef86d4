"""The engine's ladder, signal by signal, on both counter stores (in process and Redis)."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from rempart.detection.clock import ManualClock
from rempart.detection.engine import Attempt, DetectionEngine
from rempart.detection.errors import (
    AccessSuspended,
    ChecksRefused,
    IdentityLocked,
    SlowDown,
    StepUpRequired,
)
from rempart.detection.memory import MemoryStore
from rempart.detection.models import (
    Alert,
    AlertInsurer,
    AlertKind,
    Containment,
    ContainmentLevel,
    DetectionEvent,
    EventKind,
    SubjectKind,
)
from rempart.detection.store import CounterStoreUnavailable
from rempart.detection.thresholds import Step
from rempart.runtime import Runtime
from tests.detection.conftest import RecordingHooks, api_actor, portal_actor
from tests.factories import make_insurer


def check(engine: DetectionEngine, actor, beneficiary: uuid.UUID | None = None, insurer=None):  # type: ignore[no-untyped-def]
    return engine.observe(actor, hit=True, beneficiary_id=beneficiary or uuid.uuid4(), insurer_id=insurer)


def events(runtime: Runtime, kind: EventKind) -> list[DetectionEvent]:
    with runtime.sessions() as session:
        return list(session.scalars(select(DetectionEvent).where(DetectionEvent.kind == kind)))


def alerts(runtime: Runtime) -> list[Alert]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Alert).order_by(Alert.created_at)))


def test_an_ordinary_check_is_admitted_and_leaves_no_trace(engine: DetectionEngine, runtime: Runtime) -> None:
    engine.guard(api_actor())
    verdict = check(engine, api_actor())
    assert verdict.step is Step.NONE
    assert not verdict.slowed
    assert alerts(runtime) == []


def test_a_burst_is_slowed_down_then_one_check_per_interval(
    engine: DetectionEngine, clock: ManualClock, runtime: Runtime
) -> None:
    actor = api_actor()
    for _ in range(14):
        assert not check(engine, actor).slowed
        clock.advance(5)
    verdict = check(engine, actor)  # the 15th distinct beneficiary within 5 minutes
    assert verdict.slowed
    with pytest.raises(SlowDown) as refused:
        check(engine, actor)
    assert refused.value.status == 429
    assert refused.value.problem()["retry_after"] == 20
    clock.advance(20)
    assert check(engine, actor).slowed  # one check per interval still goes through
    with runtime.sessions() as session:
        row = session.get(Containment, (SubjectKind.CLIENT, actor.client_id))
        assert row is not None
        assert row.level is ContainmentLevel.SLOW
        assert row.until is not None
    assert [e.signal for e in events(runtime, EventKind.SLOWED) if e.subject_kind is SubjectKind.CLIENT] == [
        "distinct_5m"
    ]


def test_ignoring_slow_down_leads_to_refusal_then_suspension_and_an_alert_to_insurers(
    engine: DetectionEngine, clock: ManualClock, runtime: Runtime, hooks: RecordingHooks
) -> None:
    insurer = make_insurer(runtime)
    actor = api_actor()
    for _ in range(15):
        check(engine, actor, insurer=insurer.id)
        clock.advance(1)
    outcomes = []
    for _ in range(30):
        try:
            check(engine, actor, insurer=insurer.id)
            outcomes.append("answered")
        except (SlowDown, ChecksRefused, AccessSuspended) as exc:
            outcomes.append(exc.slug)
        clock.advance(1)
    assert "answered" not in outcomes
    assert outcomes[:4] == ["slow-down"] * 4
    assert outcomes[4] == "checks-refused"  # the 5th ignored Retry-After
    assert outcomes.index("access-suspended") == 14  # then 10 refused requests
    assert set(outcomes[15:]) == {"access-suspended"}
    assert hooks.suspended == [(SubjectKind.CLIENT, actor.client_id)]
    high = [a for a in alerts(runtime) if a.kind is AlertKind.CONTAINMENT and a.severity.value == "high"]
    assert len(high) == 1
    assert high[0].subject_id == actor.client_id
    with runtime.sessions() as session:
        linked = session.scalars(select(AlertInsurer.insurer_id).where(AlertInsurer.alert_id == high[0].id)).all()
    assert linked == [insurer.id]


def test_the_portal_asks_for_a_passkey_step_up_and_lets_the_person_continue(
    engine: DetectionEngine, clock: ManualClock, runtime: Runtime
) -> None:
    actor = portal_actor()
    outcomes = []
    for _ in range(20):
        try:
            check(engine, actor)
            outcomes.append("answered")
        except (SlowDown, StepUpRequired) as exc:
            outcomes.append(exc.slug)
        clock.advance(1)
    assert outcomes[:15] == ["answered"] * 15
    assert outcomes[15:] == ["slow-down"] * 4 + ["step-up-required"]
    with pytest.raises(StepUpRequired) as refused:
        check(engine, actor)
    assert refused.value.problem()["step_up"] == "passkey"
    engine.step_up_completed(actor)
    clock.advance(16 * 60)  # the burst window and the practice's slow-down have passed
    assert not check(engine, actor).slowed
    assert events(runtime, EventKind.STEP_UP_COMPLETED)


CARD = ("88450101", "M0001", "1 84 12 75 123 456 32")


def dated(day: int, *, rank: int = 1) -> Attempt:
    return Attempt(*CARD, date(1984, 12, day), rank)


def test_after_a_miss_another_date_for_that_card_is_refused_even_when_right(
    engine: DetectionEngine, clock: ManualClock
) -> None:
    actor = api_actor()
    engine.observe(actor, hit=False, attempt=dated(1))  # answered: "no matching rights"
    clock.advance(30)
    with pytest.raises(IdentityLocked) as refused:
        engine.observe(actor, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(9))  # the right date
    problem = refused.value.problem()
    assert problem["status"] == 429
    assert problem["retry_after"] == 60 * 60  # an hour after the miss, rounded up to the minute
    assert "call the insurer" in problem["detail"]
    assert problem["offline_attestation"] is True
    # The same date again is answered (it reveals nothing new); so is another card, another practice.
    engine.observe(actor, hit=False, attempt=dated(1))
    engine.observe(
        actor,
        hit=True,
        beneficiary_id=uuid.uuid4(),
        attempt=Attempt("88450101", "M0002", "284127512345678", date(1984, 12, 3)),
    )
    engine.observe(api_actor(), hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(9))
    # The practice's other software (or account) meets the same lock: it is the practice's counter.
    colleague = api_actor(practice_id=actor.practice_id)
    with pytest.raises(IdentityLocked):
        engine.observe(colleague, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(9))
    # Twins: the same card, NIR and date with another birth rank is another attempt too.
    with pytest.raises(IdentityLocked):
        engine.observe(actor, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(1, rank=2))
    clock.advance(timedelta(minutes=61))  # the lock has passed
    engine.observe(actor, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(9))


def test_the_lock_is_decided_before_the_outcome_of_the_guess(engine: DetectionEngine, clock: ManualClock) -> None:
    """Two thieves with the same history, one guessing right and one wrong, get the same refusal."""
    answers = []
    for right in (True, False):
        thief = api_actor()
        engine.observe(thief, hit=False, attempt=dated(1))
        guess = dated(9) if right else dated(2)
        with pytest.raises(IdentityLocked) as refused:
            engine.observe(thief, hit=right, beneficiary_id=uuid.uuid4() if right else None, attempt=guess)
        answers.append((type(refused.value), refused.value.status, refused.value.problem()))
    assert answers[0] == answers[1]


def test_one_corrected_typo_is_not_punished_but_guessing_several_cards_is(
    engine: DetectionEngine, clock: ManualClock, runtime: Runtime
) -> None:
    pharmacy = api_actor()
    for _ in range(30):  # an ordinary morning
        check(engine, pharmacy)
        clock.advance(60)
    engine.observe(pharmacy, hit=False, attempt=dated(1))
    clock.advance(20)
    # The right date, typed again at once: answered (a practice in good standing).
    assert engine.observe(pharmacy, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(9)).step <= Step.NOTICE
    assert check(engine, pharmacy).step <= Step.NOTICE  # the next patient is checked as usual
    assert events(runtime, EventKind.STEP_UP_REQUIRED) == []

    thief = api_actor()
    steps = []
    for n in range(3):
        card = Attempt("88450101", f"V{n:04d}", "184127512345632", date(1984, 12, 1))
        try:
            engine.observe(thief, hit=False, attempt=card)
            steps.append("miss")
        except (SlowDown, ChecksRefused, AccessSuspended) as exc:
            steps.append(exc.slug)
        clock.advance(21)
        try:
            engine.observe(
                thief, hit=True, beneficiary_id=uuid.uuid4(), attempt=replace(card, birth_date=date(1984, 12, 2))
            )
            steps.append("hit")
        except (IdentityLocked, SlowDown, ChecksRefused, AccessSuspended) as exc:
            steps.append(exc.slug)
        clock.advance(21)
    # The second card tried again with another date is refused with the whole client.
    assert steps[:4] == ["miss", "identity-locked", "miss", "checks-refused"]
    assert "hit" not in steps


def test_a_childs_mistyped_birth_rank_does_not_lock_the_family_card(
    engine: DetectionEngine, clock: ManualClock
) -> None:
    """Children share a parent's card and NIR; one typo in a child's birth rank, then the right one,
    then the other children: all answered at a practice that has been checking patients."""
    pharmacy = api_actor()
    for _ in range(5):
        check(engine, pharmacy)
        clock.advance(60)
    engine.observe(pharmacy, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(1))  # the parent
    engine.observe(pharmacy, hit=False, attempt=dated(12, rank=3))  # the child's rank mistyped
    clock.advance(20)
    for child in (dated(12, rank=1), dated(12, rank=2)):  # the right one, then the twin
        assert engine.observe(pharmacy, hit=True, beneficiary_id=uuid.uuid4(), attempt=child).step <= Step.NOTICE
        clock.advance(20)


def test_a_few_typos_are_corrected_then_the_card_locks(engine: DetectionEngine, clock: ManualClock) -> None:
    pharmacy = api_actor()
    for _ in range(10):
        check(engine, pharmacy)
        clock.advance(60)
    engine.observe(pharmacy, hit=False, attempt=dated(1))
    engine.observe(pharmacy, hit=False, attempt=dated(2))  # a second wrong date: still answered
    with pytest.raises(IdentityLocked):  # two dates missed for this card: no third answer
        engine.observe(pharmacy, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(9))
    # Three misses in the hour: this practice is no longer in good standing; a card that missed once
    # is locked at once.
    other = Attempt("88450101", "M0002", "284127512345678", date(1984, 12, 3))
    engine.observe(pharmacy, hit=False, attempt=other)
    with pytest.raises(IdentityLocked):
        engine.observe(
            pharmacy, hit=True, beneficiary_id=uuid.uuid4(), attempt=replace(other, birth_date=date(1984, 12, 4))
        )
    clock.advance(timedelta(minutes=61))  # the locks and the misses have passed
    engine.observe(pharmacy, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(9))


def test_lifting_a_containment_clears_the_identity_locks_it_concerns(
    engine: DetectionEngine, clock: ManualClock
) -> None:
    """A new client (no answered checks yet) missed a card: the card is locked for it and for its
    practice. An operator lifts the client's containment: both locks go; a lock another client of
    the practice set stays."""
    client = api_actor()
    colleague = api_actor(practice_id=client.practice_id)
    other_card = Attempt("88450101", "M0002", "284127512345678", date(1984, 12, 3))
    engine.observe(client, hit=False, attempt=dated(1))
    engine.observe(colleague, hit=False, attempt=other_card)
    clock.advance(30)
    with pytest.raises(IdentityLocked):
        engine.observe(client, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(9))
    with pytest.raises(IdentityLocked):
        engine.observe(colleague, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(9))
    assert client.client_id is not None
    engine.forget(kind=SubjectKind.CLIENT, subject_id=client.client_id)
    engine.observe(client, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(9))
    engine.observe(colleague, hit=True, beneficiary_id=uuid.uuid4(), attempt=dated(10))  # the practice's lock too
    with pytest.raises(IdentityLocked):  # the colleague's own miss still locks its card
        engine.observe(client, hit=True, beneficiary_id=uuid.uuid4(), attempt=replace(other_card, birth_rank=2))


def test_a_stream_of_misses_slows_then_refuses(engine: DetectionEngine, clock: ManualClock) -> None:
    actor = api_actor()
    results = []
    for i in range(8):
        attempt = Attempt("88450101", f"M{i:04d}", "184127512345632", date(1984, 12, 1))
        try:
            engine.observe(actor, hit=False, attempt=attempt)
            results.append("miss")
        except (SlowDown, ChecksRefused) as exc:
            results.append(exc.slug)
        clock.advance(30)
    assert results[:3] == ["miss", "miss", "checks-refused"]  # slowed at 2, refused at 3


def test_occasional_misses_among_many_hits_are_ordinary(engine: DetectionEngine, clock: ManualClock) -> None:
    actor = api_actor()
    for i in range(40):
        if i % 8 == 0:
            engine.observe(actor, hit=False, attempt=Attempt("88450101", f"X{i}", "184127512345632", date(1984, 12, 1)))
        else:
            assert check(engine, actor).step <= Step.NOTICE
        clock.advance(60)


def test_checks_never_followed_by_a_claim_raise_an_alert(
    engine: DetectionEngine, clock: ManualClock, runtime: Runtime
) -> None:
    """A pharmacy bills within half an hour of the check; new patients checked and never billed
    raise a notice once they are ten beyond the quarter an honest pharmacy does not bill."""
    followed, idle = api_actor(), api_actor()
    for _ in range(30):
        for actor in (followed, idle):
            beneficiary = uuid.uuid4()
            check(engine, actor, beneficiary)
            if actor is followed:
                assert actor.practice_id is not None
                engine.claimed(practice_id=actor.practice_id, beneficiary_id=beneficiary)
        clock.advance(120)
    raised = {(a.practice_id, a.signal) for a in alerts(runtime) if a.kind is AlertKind.SIGNAL}
    assert (idle.practice_id, "unclaimed_24h") in raised
    assert not any(practice == followed.practice_id for practice, _ in raised)


def test_out_of_hours_the_volume_thresholds_shrink(engine: DetectionEngine, clock: ManualClock) -> None:
    clock.advance(timedelta(hours=14))  # 23:00, the pharmacy is closed
    actor = api_actor()
    steps = []
    for _ in range(8):
        steps.append(check(engine, actor).slowed)
        clock.advance(5)
    assert steps == [False] * 7 + [True]  # 15 × 0.5 → the 8th distinct beneficiary


def test_a_new_network_shrinks_the_thresholds_for_a_while(engine: DetectionEngine, clock: ManualClock) -> None:
    actor = api_actor()
    check(engine, actor)
    clock.advance(timedelta(hours=1))
    stolen = api_actor(
        practice_id=actor.practice_id,
        client_id=actor.client_id,
        professional_id=actor.professional_id,
        device="jkt-elsewhere",
        address="203.0.113.50",
    )
    steps = [check(engine, stolen).slowed for _ in range(11)]
    assert steps == [False] * 10 + [True]  # 15 × 0.7


def test_a_new_session_from_the_usual_network_changes_nothing(engine: DetectionEngine, clock: ManualClock) -> None:
    actor = api_actor(channel=portal_actor().channel, client_id=None, account_id=uuid.uuid4(), device="ses:1")
    check(engine, actor)
    clock.advance(timedelta(hours=1))
    next_login = api_actor(
        channel=actor.channel,
        practice_id=actor.practice_id,
        client_id=None,
        account_id=actor.account_id,
        professional_id=actor.professional_id,
        device="ses:2",
        address=actor.address,
    )
    steps = [check(engine, next_login).slowed for _ in range(15)]
    assert steps == [False] * 14 + [True]


def test_a_practice_history_of_busy_clean_days_raises_its_thresholds(
    engine: DetectionEngine, clock: ManualClock
) -> None:
    busy = api_actor()
    for _ in range(14):  # a busy but clean morning: 14 patients in a few minutes
        check(engine, busy)
        clock.advance(10)
    clock.advance(timedelta(days=1))
    newcomer = api_actor()
    busy_steps, new_steps = [], []
    for _ in range(20):
        busy_steps.append(check(engine, busy).slowed)
        try:
            new_steps.append(check(engine, newcomer).slowed)
        except SlowDown:
            new_steps.append(True)
        clock.advance(5)
    assert not any(busy_steps)  # 14 × 1.5 = 21 for this practice
    assert any(new_steps)  # 15 for a practice without history


def test_a_second_offence_after_a_refusal_suspends(
    engine: DetectionEngine, clock: ManualClock, hooks: RecordingHooks
) -> None:
    actor = api_actor()
    for _ in range(25):
        with contextlib.suppress(SlowDown, ChecksRefused):
            check(engine, actor)
        clock.advance(1)
    with pytest.raises(ChecksRefused):
        check(engine, actor)
    clock.advance(timedelta(minutes=31))  # the refusal has expired, the strike is remembered
    outcomes = []
    for _ in range(16):
        try:
            check(engine, actor)
            outcomes.append("answered")
        except (SlowDown, ChecksRefused, AccessSuspended) as exc:
            outcomes.append(exc.slug)
        clock.advance(1)
    assert "access-suspended" in outcomes
    assert outcomes.count("answered") < 16
    assert hooks.suspended == [(SubjectKind.CLIENT, actor.client_id)]


def test_one_beneficiary_checked_by_many_practices_raises_an_alert(
    engine: DetectionEngine, clock: ManualClock, runtime: Runtime
) -> None:
    victim = uuid.uuid4()
    for _ in range(5):
        check(engine, api_actor(), victim)
        clock.advance(60)
    spread = [a for a in alerts(runtime) if a.kind is AlertKind.BENEFICIARY_SPREAD]
    assert len(spread) == 1
    assert spread[0].subject_id == victim
    check(engine, api_actor(), victim)
    assert len([a for a in alerts(runtime) if a.kind is AlertKind.BENEFICIARY_SPREAD]) == 1  # once a day


def test_the_sweep_notices_a_platform_wide_surge(runtime: Runtime, store, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    from rempart.detection.thresholds import DetectionConfig

    config = DetectionConfig(platform_hourly_floor=50, insurer_hourly_floor=50, sweep_interval=timedelta(hours=24))
    engine = DetectionEngine(store=store, sessions=runtime.sessions, clock=clock, config=config, background=False)
    for _ in range(24):  # a quiet day: 5 patients an hour
        for _ in range(5):
            check(engine, api_actor())
        clock.advance(timedelta(hours=1))
    for _ in range(60):  # then 60 in an hour, spread over many practices
        check(engine, api_actor())
    clock.advance(timedelta(hours=1))
    assert engine.sweep() == 1
    engine.sweep()  # a second sweep in the same hour finds it again but raises nothing new
    surge = [a for a in alerts(runtime) if a.kind is AlertKind.AGGREGATE]
    assert [a.signal for a in surge] == ["aggregate_volume"]


def test_one_leaked_list_worked_through_several_stolen_keys_is_refused(
    engine: DetectionEngine, clock: ManualClock, runtime: Runtime
) -> None:
    """Three practices' keys already went through the same list this week (slowly, each under its own
    thresholds); the fourth key's checks of identities tried at four practices are counted: a notice
    at three, refused at ten."""
    people = [
        (uuid.uuid4(), Attempt("88450101", f"L{i:06d}", f"1{i % 90 + 10:02d}0175123{i:03d}", date(1975, 1, 1 + i % 28)))
        for i in range(12)
    ]
    earlier = [api_actor() for _ in range(3)]
    for actor in earlier:
        for beneficiary, attempt in people:
            engine.observe(actor, hit=True, beneficiary_id=beneficiary, attempt=attempt)
            clock.advance(timedelta(minutes=20))
        clock.advance(timedelta(hours=6))
    fourth = api_actor()
    outcomes = []
    for beneficiary, attempt in people:
        try:
            engine.observe(fourth, hit=True, beneficiary_id=beneficiary, attempt=attempt)
            outcomes.append("answered")
        except (ChecksRefused, AccessSuspended) as exc:
            outcomes.append(exc.slug)
        clock.advance(timedelta(minutes=20))
    assert outcomes[:9] == ["answered"] * 9
    # The tenth identity tried at four practices is refused (for half an hour); the next offence
    # within the day suspends.
    assert outcomes[9:] == ["checks-refused", "checks-refused", "access-suspended"]
    raised = {(a.practice_id, a.signal) for a in alerts(runtime)}
    assert (fourth.practice_id, "spread_24h") in raised
    assert not any(practice in {a.practice_id for a in earlier} for practice, _ in raised)


class _NoticesUnreachable(MemoryStore):
    """A counter store that answers observations but not the record of a day's notices."""

    def notice(self, **kwargs: Any) -> int:
        raise CounterStoreUnavailable()


def test_a_notice_the_store_cannot_record_fails_closed_with_an_alert(
    runtime: Runtime, clock: ManualClock, hooks: RecordingHooks
) -> None:
    engine = DetectionEngine(
        store=_NoticesUnreachable(), sessions=runtime.sessions, clock=clock, hooks=hooks, background=False
    )
    actor = api_actor()
    refused: CounterStoreUnavailable | None = None
    for _ in range(100):  # distinct patients until the hour's notice
        try:
            check(engine, actor)
        except CounterStoreUnavailable as exc:
            refused = exc
            break
        clock.advance(20)
    assert refused is not None  # the answer did not leave: 503
    raised = [a.kind for a in alerts(runtime)]
    assert AlertKind.COUNTER_STORE_UNREACHABLE in raised
