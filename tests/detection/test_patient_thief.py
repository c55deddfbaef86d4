"""A patient thief and honest practices, over simulated weeks (``bench.detection_scenarios``).

Three app processes (three engines, each with its own Redis connection) share one Redis; the
database (SQLite, PostgreSQL) holds containment records and alerts. Time is a controllable clock.

The thief holds an established practice's stolen software key and a leaked list of (card, NIR, date
of birth); he works from another network, spreads his checks over 08:00–20:00, honours every
Retry-After and ramps up over ten days (149, 320, 562, … records a day: what he obtained in 2024).
A quote for each hit changes nothing: quotes are not care and reach no detection hook.
"""

from __future__ import annotations

import pytest
from bench.detection_scenarios import HOSPITAL, OPTICIAN, PHARMACY, Profile, Thief, simulate
from sqlalchemy import select

from rempart.detection.engine import DetectionEngine
from rempart.detection.models import Alert, AlertKind, DetectionEvent, EventKind
from rempart.runtime import Runtime
from tests.detection.conftest import ManualClock, RecordingHooks

# Two weeks of the practice's own work before the thief comes (twelve working days for a pharmacy).
THIEF_DAY = 14


@pytest.mark.slow
@pytest.mark.parametrize("profile", [PHARMACY, HOSPITAL], ids=lambda p: p.name)
def test_a_patient_thief_from_another_network_is_suspended_within_100_records(
    processes: list[DetectionEngine], clock: ManualClock, hooks: RecordingHooks, runtime: Runtime, profile: Profile
) -> None:
    outcome = simulate(processes, clock, profile=profile, days=THIEF_DAY + 10, thief=Thief(start_day=THIEF_DAY))
    assert outcome.contained, "the thief was never suspended"
    assert outcome.disclosed <= 100
    assert outcome.honest_refusals_before_thief == 0  # the practice's own two weeks untouched
    assert len(hooks.suspended) == 1  # the stolen client, nothing else
    with runtime.sessions() as session:
        suspended = session.scalars(select(Alert).where(Alert.kind == AlertKind.CONTAINMENT)).all()
    # The operators' alert says which signal fired and the figures behind it.
    final = [a for a in suspended if a.severity.value == "high"]
    assert len(final) == 1
    assert final[0].signal
    assert {"value", "threshold"} <= set(final[0].detail)
    print(
        f"\n({profile.name}) disclosed={outcome.disclosed} per day {outcome.disclosed_per_day}, "
        f"suspended {outcome.contained}, signal {final[0].signal} {final[0].detail}"
    )


@pytest.mark.slow
def test_a_date_of_birth_guesser_diluted_with_valid_records_gets_no_right_date(
    processes: list[DetectionEngine], clock: ManualClock, hooks: RecordingHooks
) -> None:
    """One guess for two valid records, from another network: misses stay a third of the identities
    tried, under the share the hourly ladder needs, and the guesser is still stopped after a few
    guesses (misses from a network the practice has not established); a card that missed is
    never answered again with another date there."""
    outcome = simulate(
        processes, clock, profile=PHARMACY, days=THIEF_DAY + 3, thief=Thief(start_day=THIEF_DAY, guess_every=3)
    )
    assert outcome.right_dates == 0
    assert outcome.contained
    assert outcome.guesses <= 5
    assert outcome.honest_refusals_before_thief == 0
    print(f"\n(guesser) guesses={outcome.guesses}, right dates={outcome.right_dates}, suspended {outcome.contained}")


@pytest.mark.slow
@pytest.mark.parametrize("profile", [PHARMACY, OPTICIAN, HOSPITAL], ids=lambda p: p.name)
def test_a_month_of_honest_work_is_never_slowed_stepped_up_or_refused(
    processes: list[DetectionEngine], clock: ManualClock, runtime: Runtime, profile: Profile
) -> None:
    """Two weeks of history, then a month measured: mostly returning patients, some new ones, a few
    mistyped dates, claims for most checks (at once at a pharmacy, days later at an optician's or a
    hospital), busier Mondays, a late day until 22:00."""
    outcome = simulate(processes, clock, profile=profile, days=14 + 30, measure_from=14)
    for engine in processes:
        engine.drain()
    assert outcome.honest_checks > 0
    assert outcome.honest_refusals == {}
    with runtime.sessions() as session:
        steps = session.scalars(
            select(DetectionEvent.kind).where(
                DetectionEvent.kind.in_([EventKind.SLOWED, EventKind.STEP_UP_REQUIRED, EventKind.SUSPENDED])
            )
        ).all()
        notices = session.scalars(select(Alert.signal).where(Alert.kind == AlertKind.SIGNAL)).all()
    assert steps == []
    print(
        f"\n({profile.name}) {outcome.honest_checks} checks over 44 days, refusals during the first two weeks: "
        f"{outcome.honest_refusals_learning}, after: 0; notices: {sorted(notices)}"
    )
