"""Simulated weeks of a practice's traffic, honest and stolen, through the detection engine.

Shared by the scenario tests (``tests/detection/test_patient_thief.py``) and ``python -m
bench.detection --scenarios``, which prints their figures. Time is a controllable clock: days are
simulated, not slept. Requests go round-robin over the engines given (one per app process).

What is simulated is what detection sees: rights checks (a hit names the beneficiary, a miss the
identity tried), claims (``DetectionEngine.claimed``), the caller's network. A quote or a prior
approval is free and reaches no detection hook (it is not care): a thief who asks one for every
hit, as the 2024 attacker would to look busy, changes nothing here, which is the point.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rempart.detection.actor import Actor, Attempt
from rempart.detection.clock import ManualClock
from rempart.detection.engine import DetectionEngine
from rempart.detection.errors import AccessSuspended, ChecksRefused, IdentityLocked, SlowDown, StepUpRequired
from rempart.detection.models import KillChannel
from rempart.errors import RempartError
from rempart.logs import configure_logging

PARIS = ZoneInfo("Europe/Paris")
INSURER = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
# The 2024 thief's days, as tried against an established pharmacy before this detection: records
# he obtained each working day while honouring every Retry-After.
RAMP = (149, 320, 562, 907, 1398, 1460, 1460, 1460, 1460, 1460)


@dataclass(frozen=True)
class Person:
    beneficiary_id: uuid.UUID
    attempt: Attempt


class People:
    """An endless supply of distinct people (cards, NIRs, dates of birth), deterministic per seed."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._n = itertools.count()

    def next(self) -> Person:
        i, rng = next(self._n), self._rng
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(80 * 365))
        nir = f"{rng.choice('12')}{born:%y%m}{rng.randrange(1, 96):02d}{rng.randrange(1000):03d}{i % 1000:03d}"
        return Person(uuid.UUID(int=rng.getrandbits(128)), Attempt("88450101", f"M{i:08d}", nir, born))


@dataclass(frozen=True)
class Profile:
    """How one kind of practice works, as its rights checks and claims show it."""

    name: str
    profession: str
    checks_per_day: int
    new_share: float  # of a day's patients, never seen at the practice before
    claim_share: float  # of the checks followed by a claim
    claim_delay: tuple[float, float]  # minutes, uniform
    typo_share: float  # checks preceded by a mistyped date of birth (the card reader fills most in)
    opening: tuple[int, int]  # local hours
    weekdays: frozenset[int]
    monday_factor: float = 1.3
    late_day: int | None = 17  # the day (index) the practice stays open until 22:00
    pool: int = 2000  # returning patients it draws from


PHARMACY = Profile(
    name="pharmacy",
    profession="pharmacist",
    checks_per_day=250,
    new_share=0.15,
    claim_share=0.95,
    claim_delay=(1, 12),
    typo_share=0.01,
    opening=(8, 20),
    weekdays=frozenset(range(6)),
)
OPTICIAN = Profile(
    name="optician",
    profession="optician",
    checks_per_day=25,
    new_share=0.3,
    claim_share=0.6,  # a quote is not always taken up; glasses are billed on delivery
    claim_delay=(3 * 1440, 20 * 1440),
    typo_share=0.01,
    opening=(9, 19),
    weekdays=frozenset(range(1, 6)),
    pool=600,
)
HOSPITAL = Profile(
    name="hospital",
    profession="hospital",
    checks_per_day=150,
    new_share=0.3,
    claim_share=0.9,
    claim_delay=(1440, 8 * 1440),  # billed after the stay
    typo_share=0.01,
    opening=(6, 22),  # admissions and consultations, every day; a few at night would change nothing
    weekdays=frozenset(range(7)),
    monday_factor=1.2,
    pool=3000,
)
HONEST_NETWORK = "192.0.2.10"
THIEF_NETWORK = "203.0.113.77"


@dataclass
class Thief:
    """A stolen practice-software key used from another network, from ``start_day`` (index): each
    day ``ramp[k]`` leaked records spread over 08:00–20:00, honouring every Retry-After, until
    suspended. With ``guess_every``, one in so many requests guesses the date of birth of a
    leaked card and NIR (the NIR gives the year and month): the guesses are diluted among valid
    records so that misses stay a small share."""

    start_day: int
    ramp: tuple[int, ...] = RAMP
    network: str = THIEF_NETWORK
    guess_every: int = 0
    seed: int = 99
    pace: timedelta | None = None  # a hurried thief: one request every ``pace``, day and night
    honours_retry_after: bool = True  # False: a program hammering on whatever it is told


@dataclass
class Outcome:
    disclosed: int = 0  # records the thief obtained (answered hits)
    disclosed_per_day: list[int] = field(default_factory=list)
    contained: str = ""  # when the thief was suspended (day, local time, his request number)
    thief_requests: int = 0
    guesses: int = 0
    right_dates: int = 0  # guessed dates of birth answered as hits
    honest_checks: int = 0
    honest_refusals: Counter[str] = field(default_factory=Counter)
    honest_refusals_before_thief: int = 0
    honest_refusals_learning: int = 0  # during the days before ``measure_from``
    thief_refusals: Counter[str] = field(default_factory=Counter)


def _at(day: date, minutes: float) -> datetime:
    return datetime.combine(day, time(0), tzinfo=PARIS) + timedelta(minutes=minutes)


def simulate(  # noqa: PLR0912, PLR0915 (one event loop, read top to bottom)
    engines: list[DetectionEngine],
    clock: ManualClock,
    *,
    profile: Profile,
    days: int,
    thief: Thief | None = None,
    seed: int = 7,
    measure_from: int = 0,
) -> Outcome:
    """``days`` days of the practice's honest work (and the thief's, if any), in time order, from the
    day after the clock's (day indexes count from it). Honest
    refusals are counted from day ``measure_from`` (the days before are the practice's history, as
    an established practice has it: its first days on the platform teach its usual network, hours and
    volumes), and those before it separately."""
    first_day = clock.now().astimezone(PARIS).date() + timedelta(days=1)

    def _day(index: int) -> date:
        return first_day + timedelta(days=index)

    rng = random.Random(seed)
    practice_id, client_id = uuid.UUID(int=rng.getrandbits(128)), uuid.UUID(int=rng.getrandbits(128))
    staff = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(3)]

    def actor(address: str, professional: uuid.UUID) -> Actor:
        return Actor(
            channel=KillChannel.PRACTICE_API,
            practice_id=practice_id,
            profession=profession,
            client_id=client_id,
            professional_id=professional,
            device="jkt-" + address,
            address=address,
        )

    profession = profile.profession
    people, leaked = People(seed), People(seed + 1000)
    known: list[Person] = []
    # (when, order, kind, person, extra): kinds "check", "typo", "claim", "thief"
    events: list[tuple[datetime, int, str, Person | None, int]] = []
    order = itertools.count()
    for d in range(days):
        day = _day(d)
        if day.weekday() not in profile.weekdays:
            continue
        count = round(profile.checks_per_day * (profile.monday_factor if day.weekday() == 0 else 1.0))
        start, end = profile.opening[0] * 60, (22 if d == profile.late_day else profile.opening[1]) * 60
        for _ in range(count):
            fresh = not known or rng.random() < profile.new_share or len(known) < 20
            person = people.next() if fresh else rng.choice(known[-profile.pool :])
            if fresh:
                known.append(person)
            # Busier mornings and late afternoons, as at a counter.
            minute = rng.triangular(start, end, start + (end - start) * rng.choice((0.2, 0.8)))
            at = _at(day, minute)
            if rng.random() < profile.typo_share:
                heapq.heappush(events, (at - timedelta(seconds=20), next(order), "typo", person, 0))
            heapq.heappush(events, (at, next(order), "check", person, 0))
            if rng.random() < profile.claim_share:
                delay = timedelta(minutes=rng.uniform(*profile.claim_delay))
                heapq.heappush(events, (at + delay, next(order), "claim", person, 0))
    outcome = Outcome()
    thief_rng = random.Random(thief.seed if thief else 0)
    thief_start: datetime | None = None
    if thief is not None:
        thief_start = _at(_day(thief.start_day), 8 * 60)
        heapq.heappush(events, (thief_start, next(order), "thief", None, 0))
    balance = itertools.cycle(engines)
    suspended = False
    plan: dict[int, int] = {}  # thief's day index -> records still to get that day
    pending: Person | None = None  # the thief retries the same record after a Retry-After
    guess_victim: Person | None = None
    while events:
        at, _, kind, person, _extra = heapq.heappop(events)
        if at > clock.now():
            clock.set(at)
        engine = next(balance)
        if kind == "claim":
            assert person is not None
            engine.claimed(practice_id=practice_id, beneficiary_id=person.beneficiary_id)
            continue
        if kind in ("check", "typo"):
            assert person is not None
            who = actor(HONEST_NETWORK, staff[rng.randrange(3)])
            attempt = person.attempt
            if kind == "typo":
                wrong = attempt.birth_date.replace(day=28 if attempt.birth_date.day != 28 else 27)
                attempt = Attempt(attempt.amc_number, attempt.member_number, attempt.nir, wrong)
            try:
                engine.guard(who, insurer_id=INSURER)
                if kind == "typo":
                    engine.observe(who, hit=False, insurer_id=INSURER, attempt=attempt)
                else:
                    engine.observe(
                        who, hit=True, beneficiary_id=person.beneficiary_id, insurer_id=INSURER, attempt=attempt
                    )
                    outcome.honest_checks += 1
            except RempartError as exc:
                if at < _at(_day(measure_from), 0):
                    outcome.honest_refusals_learning += 1
                    continue
                outcome.honest_refusals[exc.slug] += 1
                if thief_start is None or at < thief_start:
                    outcome.honest_refusals_before_thief += 1
            continue
        # The thief's next request.
        assert thief is not None
        assert thief_start is not None
        if suspended:
            continue
        index = (at.astimezone(PARIS).date() - first_day).days - thief.start_day
        if index >= len(thief.ramp):
            continue
        if index not in plan:
            plan[index] = thief.ramp[index]
            outcome.disclosed_per_day.append(0)
        local = at.astimezone(PARIS)
        if thief.pace is None and (plan[index] <= 0 or local.hour >= 20):
            heapq.heappush(events, (_at(local.date() + timedelta(days=1), 8 * 60), next(order), "thief", None, 0))
            continue
        who = actor(thief.network, staff[0])
        guessing = bool(thief.guess_every) and outcome.thief_requests % thief.guess_every == thief.guess_every - 1
        if pending is None:
            if guessing:
                guess_victim = leaked.next()
                real = guess_victim.attempt.birth_date
                day_of_month = thief_rng.randrange(1, 29)
                tried = guess_victim.attempt
                pending = Person(
                    guess_victim.beneficiary_id,
                    Attempt(tried.amc_number, tried.member_number, tried.nir, real.replace(day=day_of_month)),
                )
            else:
                guess_victim = None
                pending = leaked.next()
        target = pending
        right = guess_victim is None or target.attempt.birth_date == guess_victim.attempt.birth_date
        outcome.thief_requests += 1
        spread = thief.pace or timedelta(minutes=12 * 60 / max(thief.ramp[index], 1))
        try:
            engine.guard(who, insurer_id=INSURER)
            if right:
                engine.observe(
                    who, hit=True, beneficiary_id=target.beneficiary_id, insurer_id=INSURER, attempt=target.attempt
                )
                outcome.disclosed += 1
                outcome.disclosed_per_day[-1] += 1
                plan[index] -= 1
                if guess_victim is not None:
                    outcome.guesses += 1
                    outcome.right_dates += 1
            else:
                engine.observe(who, hit=False, insurer_id=INSURER, attempt=target.attempt)
                outcome.guesses += 1
            pending = None
            wait = spread
        except (SlowDown, ChecksRefused, StepUpRequired, IdentityLocked) as exc:
            outcome.thief_refusals[exc.slug] += 1
            retry = exc.problem().get("retry_after")
            wait = timedelta(seconds=int(retry)) if retry else timedelta(minutes=30)
            if not thief.honours_retry_after:
                wait = spread
            if isinstance(exc, IdentityLocked):
                pending, wait = None, spread  # another victim instead
        except AccessSuspended as exc:
            outcome.thief_refusals[exc.slug] += 1
            suspended = True
            outcome.contained = f"day {index + 1} at {local:%H:%M}, request {outcome.thief_requests}"
            continue
        heapq.heappush(events, (at + wait, next(order), "thief", None, 0))
    for engine in engines:
        engine.drain()
    return outcome


# -- the report (``python -m bench.detection``, part 4) -----------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    profile: Profile
    days: int
    thief: Thief | None = None
    measure_from: int = 7
    goal: str = ""


SCENARIOS = (
    Scenario("patient thief, pharmacy key, another network", PHARMACY, 24, Thief(14), goal="≤ 100 records"),
    Scenario("patient thief, hospital key, another network", HOSPITAL, 24, Thief(14), goal="≤ 100 records"),
    Scenario(
        "patient thief, pharmacy key, the pharmacy's own network",
        PHARMACY,
        24,
        Thief(14, network=HONEST_NETWORK),
        goal="(beyond the issue)",
    ),
    Scenario(
        "patient thief, hospital key, the hospital's own network",
        HOSPITAL,
        24,
        Thief(14, network=HONEST_NETWORK),
        goal="(beyond the issue)",
    ),
    Scenario(
        "date-of-birth guesser, 2 valid records per guess, another network",
        PHARMACY,
        17,
        Thief(14, guess_every=3),
        goal="0 right dates",
    ),
    Scenario(
        "date-of-birth guesser, 2 valid records per guess, the pharmacy's own network",
        PHARMACY,
        17,
        Thief(14, guess_every=3, network=HONEST_NETWORK),
        goal="(beyond the issue)",
    ),
    Scenario(
        "fast thief, 10 requests a second, the pharmacy's own network",
        PHARMACY,
        15,
        Thief(14, ramp=(10_000,), network=HONEST_NETWORK, pace=timedelta(seconds=0.1), honours_retry_after=False),
        goal="≤ 20 records",
    ),
    Scenario(
        "fast thief as above, honouring every Retry-After",
        PHARMACY,
        15,
        Thief(14, ramp=(10_000,), network=HONEST_NETWORK, pace=timedelta(seconds=0.1)),
        goal="≤ 40 records",
    ),
    Scenario("honest pharmacy, a month after two weeks", PHARMACY, 44, measure_from=14, goal="0 refusals"),
    Scenario("honest optician, a month after two weeks", OPTICIAN, 44, measure_from=14, goal="0 refusals"),
    Scenario("honest hospital, a month after two weeks", HOSPITAL, 44, measure_from=14, goal="0 refusals"),
)


def report(engines_of: Callable[[], tuple[list[DetectionEngine], ManualClock, Callable[[], None]]]) -> None:
    """Every scenario on fresh engines (``engines_of`` gives engines sharing one store, their clock
    and how to close them); one line of figures each."""
    configure_logging(level=logging.ERROR)  # each containment logs a warning: not the report's
    print(f"   {'scenario':74s} {'goal':18s} figures")
    for scenario in SCENARIOS:
        engines, clock, close = engines_of()
        try:
            o = simulate(
                engines,
                clock,
                profile=scenario.profile,
                days=scenario.days,
                thief=scenario.thief,
                measure_from=scenario.measure_from,
            )
        finally:
            close()
        if scenario.thief is None:
            refusals = sum(o.honest_refusals.values())
            figures = (
                f"{o.honest_checks:,} checks measured, {refusals} refused or slowed "
                f"({o.honest_refusals_learning} in the two weeks before)"
            )
        else:
            figures = f"{o.disclosed} records ({'/'.join(map(str, o.disclosed_per_day))} a day)"
            if scenario.thief.guess_every:
                figures += f", {o.guesses} guesses answered, {o.right_dates} right dates"
            figures += (
                f"; suspended {o.contained or 'never'}; honest refusals before him {o.honest_refusals_before_thief}"
            )
        print(f"   {scenario.name:74s} {scenario.goal:18s} {figures}", flush=True)
