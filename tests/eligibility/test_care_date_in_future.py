"""Care is quoted and billed once given: a date of care after today (Paris) is refused with its
own problem, ``care-date-in-future``, give or take a few minutes of clock skew at midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rempart.eligibility.service import CLOCK_SKEW, CareDateInFuture, care_day, refuse_future_care
from rempart.pricing.service import quote_for_check
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.eligibility.world import NOW, build_world, frames, practice_principal, rights_check
from tests.factories import TODAY

# 23:58 in Paris on 1 July (summer time, UTC+2): a practice's clock a few minutes ahead says tomorrow.
BEFORE_MIDNIGHT = datetime(2026, 7, 1, 21, 58, tzinfo=UTC)


def test_today_passes_tomorrow_does_not_but_a_few_minutes_before_midnight_it_does() -> None:
    today = care_day(BEFORE_MIDNIGHT)
    tomorrow = today + timedelta(days=1)

    refuse_future_care([today, today - timedelta(days=30)], BEFORE_MIDNIGHT)
    refuse_future_care([tomorrow], BEFORE_MIDNIGHT)  # within CLOCK_SKEW of midnight
    with pytest.raises(CareDateInFuture):
        refuse_future_care([tomorrow], BEFORE_MIDNIGHT - CLOCK_SKEW)
    with pytest.raises(CareDateInFuture) as refused:
        refuse_future_care([today, tomorrow + timedelta(days=1)], BEFORE_MIDNIGHT)
    assert (refused.value.status, refused.value.slug) == (422, "care-date-in-future")


def test_a_quote_for_care_after_today_is_refused(runtime: Runtime) -> None:
    world = build_world(runtime, members=4)
    optician = practice_principal(runtime, Profession.OPTICIAN)
    check = rights_check(world, optician, world.patient(product="PREMIUM"))

    with runtime.sessions() as session, pytest.raises(CareDateInFuture):
        quote_for_check(
            session=session,
            caller=optician,
            check_id=check.check_id,
            lines=[frames(TODAY + timedelta(days=1))],
            now=NOW,
        )
    with runtime.sessions() as session:
        quoted = quote_for_check(
            session=session, caller=optician, check_id=check.check_id, lines=[frames(TODAY)], now=NOW
        )
    assert quoted.quote.lines
