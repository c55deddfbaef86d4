"""The issue's scenarios, at the engine: three app processes (three engines, each with its own Redis
connection and caches) share one Redis; requests go round-robin; time is a controllable clock.

The lookup is simulated by a table of (card, NIR, date of birth) → beneficiary: what these tests
measure is what detection lets through. ``test_http_scenarios`` runs the same attacks through the
rights-check route.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from rempart.detection.actor import Actor, Attempt
from rempart.detection.engine import DetectionEngine
from rempart.detection.errors import AccessSuspended, ChecksRefused, IdentityLocked, SlowDown
from rempart.detection.models import Alert, AlertKind, DetectionEvent, SubjectKind
from rempart.errors import RempartError
from rempart.runtime import Runtime
from tests.detection.conftest import START, ManualClock, RecordingHooks, api_actor

INSURER = uuid.uuid4()


@dataclass(frozen=True)
class Person:
    beneficiary_id: uuid.UUID
    attempt: Attempt


def population(count: int, *, seed: int) -> list[Person]:
    rng = random.Random(seed)
    people = []
    for i in range(count):
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(80 * 365))
        nir = f"{rng.choice('12')}{born:%y%m}{rng.randrange(1, 96):02d}{rng.randrange(1000):03d}{i % 1000:03d}"
        attempt = Attempt("88450101", f"M{i:07d}", nir, born)
        people.append(Person(uuid.uuid4(), attempt))
    return people


class RoundRobin:
    """Spreads requests over the processes like a load balancer."""

    def __init__(self, engines: list[DetectionEngine]) -> None:
        self.engines = engines
        self._next = itertools.cycle(engines)

    def __call__(self) -> DetectionEngine:
        return next(self._next)

    def drain(self) -> None:
        for engine in self.engines:
            engine.drain()


def check(engine: DetectionEngine, actor: Actor, person: Person, *, hit: bool = True) -> None:
    """guard, lookup (simulated), observe: returns when the answer may leave, raises otherwise."""
    engine.guard(actor, insurer_id=INSURER)
    if hit:
        engine.observe(
            actor, hit=True, beneficiary_id=person.beneficiary_id, insurer_id=INSURER, attempt=person.attempt
        )
    else:
        engine.observe(actor, hit=False, insurer_id=INSURER, attempt=person.attempt)


@pytest.mark.slow
def test_a_replayed_list_of_10000_triples_discloses_at_most_20_records(
    processes: list[DetectionEngine], clock: ManualClock, hooks: RecordingHooks
) -> None:
    lb = RoundRobin(processes)
    thief = api_actor()  # a valid client, from the practice's own PC (no new device or network)
    disclosed, refusals = 0, defaultdict(int)
    for person in population(10_000, seed=1):
        try:
            check(lb(), thief, person)
            disclosed += 1
        except RempartError as exc:
            refusals[exc.slug] += 1
        clock.advance(0.1)  # ten requests a second
    lb.drain()
    assert disclosed <= 20
    assert hooks.suspended == [(SubjectKind.CLIENT, thief.client_id)]
    assert refusals["access-suspended"] > 9_900
    print(f"\n(a) disclosed={disclosed} refusals={dict(refusals)}")


def test_a_replay_that_respects_retry_after_is_suspended_too(
    processes: list[DetectionEngine], clock: ManualClock, hooks: RecordingHooks
) -> None:
    """The careful thief waits as told after every refusal instead of hammering."""
    lb = RoundRobin(processes)
    thief = api_actor()
    disclosed = 0
    for person in population(10_000, seed=2):
        try:
            check(lb(), thief, person)
            disclosed += 1
            clock.advance(1)
        except (SlowDown, ChecksRefused) as exc:
            clock.advance(int(exc.problem()["retry_after"]))
        except AccessSuspended:
            break
    lb.drain()
    assert hooks.suspended == [(SubjectKind.CLIENT, thief.client_id)]
    assert disclosed <= 40
    print(f"\n(a') patient thief disclosed={disclosed} before suspension")


def guess_until_stopped(
    lb: RoundRobin, thief: Actor, victims: list[Person], clock: ManualClock, seed: int, *, per_victim: int = 2
) -> tuple[int, int]:
    """The thief holds each victim's card and NIR (so the year and month of birth) and tries days,
    going on after every refusal, until suspended. Its first try for a victim is wrong and, with
    ``per_victim`` 2, its second is the right date: the worst case for the platform, since the
    second try is where guessing pays. Returns (answered guesses, hits)."""
    rng = random.Random(seed)
    answered = hits = 0
    for victim in victims:
        real = victim.attempt.birth_date
        wrong = [d for d in range(1, 29) if d != real.day]
        guesses = [rng.choice(wrong), real.day][:per_victim]
        for day in guesses:
            a = victim.attempt
            guessed = Person(
                victim.beneficiary_id, Attempt(a.amc_number, a.member_number, a.nir, real.replace(day=day))
            )
            try:
                check(lb(), thief, guessed, hit=day == real.day)
                answered += 1
                hits += day == real.day
            except AccessSuspended:
                return answered, hits
            except (SlowDown, ChecksRefused, IdentityLocked):
                pass
            clock.advance(2)
    return answered, hits


@pytest.mark.parametrize("per_victim", [2, 1], ids=["wrong-then-right", "one-date-per-nir"])
def test_guessing_dates_of_birth_gets_no_hit_and_is_suspended(
    processes: list[DetectionEngine], clock: ManualClock, hooks: RecordingHooks, per_victim: int
) -> None:
    """Fifty stolen clients each guess until suspended. A second date for a card and NIR that missed
    is refused even when right, so a guess is never answered after a miss (zero hits); the first
    tries, one per NIR, are answered like any honest check (one chance in ~30 each, which no
    platform can refuse) and the misses ladder stops them after a few."""
    lb = RoundRobin(processes)
    thieves = [api_actor() for _ in range(50)]
    answered_per_thief, hits = [], 0
    for n, thief in enumerate(thieves):
        answered, hit = guess_until_stopped(
            lb, thief, population(100, seed=100 + n), clock, seed=n, per_victim=per_victim
        )
        answered_per_thief.append(answered)
        hits += hit
        clock.advance(timedelta(minutes=1))
    lb.drain()
    assert hits == 0
    assert sorted(hooks.suspended) == sorted((SubjectKind.CLIENT, t.client_id) for t in thieves)
    assert max(answered_per_thief) <= 2  # two wrong first tries answered, then refused
    print(
        f"\n(b, {per_victim} per victim) answered guesses per thief: max={max(answered_per_thief)}, "
        f"total={sum(answered_per_thief)} over 50 thieves; hits: {hits}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("per_practice", [False, True], ids=["1-a-minute-overall", "1-a-minute-each"])
def test_low_and_slow_over_five_practices_raises_alerts_before_50_beneficiaries_each(
    processes: list[DetectionEngine], clock: ManualClock, runtime: Runtime, per_practice: bool
) -> None:
    lb = RoundRobin(processes)
    thieves = [api_actor() for _ in range(5)]
    people = iter(population(5 * 1440, seed=4))
    answered: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for minute in range(24 * 60):
        turn = thieves if per_practice else [thieves[minute % 5]]
        for thief in turn:
            try:
                check(lb(), thief, next(people))
                assert thief.practice_id is not None
                answered[thief.practice_id].append(clock.now())
            except RempartError:
                pass
        clock.advance(60)
    lb.drain()
    with runtime.sessions() as session:
        alerts = session.scalars(select(Alert).order_by(Alert.created_at)).all()
    for thief in thieves:
        assert thief.practice_id is not None
        first = next(a.created_at for a in alerts if a.practice_id == thief.practice_id)
        before = sum(1 for t in answered[thief.practice_id] if t <= first)
        assert before < 50, (thief.practice_id, before)
        print(f"\n(c) practice alerted after {before} beneficiaries, at {first - START}")


def test_a_normal_pharmacy_day_is_never_slowed_down(
    processes: list[DetectionEngine], clock: ManualClock, runtime: Runtime
) -> None:
    """300 patients between 8:30 and 19:30, a morning rush, each checked then billed a few minutes
    later; a few patients who leave without buying; and ten dates of birth mistyped then corrected at
    once. The corrections are answered (a lone typo at a pharmacy with answered checks does not lock
    the card); nothing is refused and nothing is slowed down."""
    lb = RoundRobin(processes)
    rng = random.Random(5)
    practice_id, client_id = uuid.uuid4(), uuid.uuid4()
    pharmacists = [uuid.uuid4() for _ in range(3)]
    opening = (START + timedelta(days=1)).replace(hour=8, minute=30)  # Wednesday morning
    clock.set(opening)
    # Arrivals: twice as many per minute from 9:00 to 11:30 and 17:00 to 19:00 as the rest of the day.
    minutes = [m for m in range(11 * 60) for _ in range(2 if 30 <= m < 180 or 510 <= m < 630 else 1)]
    arrivals = sorted(rng.choice(minutes) * 60 + rng.randrange(60) for _ in range(300))
    people = population(300, seed=5)
    events: list[tuple[float, int, str, Person]] = []
    for i, (at, person) in enumerate(zip(arrivals, people, strict=True)):
        if i % 30 == 7:  # a typo in the date of birth, corrected at once
            wrong = Attempt(
                person.attempt.amc_number, person.attempt.member_number, person.attempt.nir, date(1901, 1, 1)
            )
            events.append((at - 20, i, "miss", Person(person.beneficiary_id, wrong)))
        events.append((at, i, "check", person))
        if i % 50 != 3:  # most patients buy and are billed within a few minutes
            events.append((at + rng.randrange(60, 360), i, "bill", person))
    slowed, answered = [], 0
    for at, i, what, person in sorted(events, key=lambda e: e[:2]):
        moment = opening + timedelta(seconds=at)
        if moment > clock.now():
            clock.set(moment)
        actor = Actor(
            channel=api_actor().channel,
            practice_id=practice_id,
            profession="pharmacist",
            client_id=client_id,
            professional_id=pharmacists[i % 3],
            device="jkt-counter",
            address="192.0.2.10",
        )
        engine = lb()
        if what == "bill":
            engine.claimed(practice_id=practice_id, beneficiary_id=person.beneficiary_id)
            continue
        try:
            check(engine, actor, person, hit=what == "check")
            answered += what == "check"
        except RempartError as exc:
            slowed.append((i, what, exc.slug))
    lb.drain()
    assert slowed == []
    assert answered == 300
    with runtime.sessions() as session:
        steps = session.scalars(select(DetectionEvent.kind).where(DetectionEvent.practice_id == practice_id)).all()
        contained = session.scalars(select(Alert).where(Alert.kind == AlertKind.CONTAINMENT)).all()
    assert [s for s in steps if s.value != "alert_raised"] == []
    assert contained == []
