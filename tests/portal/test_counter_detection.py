"""The portal's rights check obeys detection exactly as the API does.

The same sweep of distinct patients, at the same pace, from an optician's portal session and from an
optician's practice software, each against a fresh detection engine (its own counters, as on a fresh
day): both are slowed down, then stepped up, then suspended, at the same request numbers. In the
portal each step is a readable page that says what to do ("Please slow down" with ``Retry-After``,
"Confirm it is you", "Access suspended"). And a person who confirms with their passkey when asked
carries on: the session's passkey moment reaches detection (``PracticePrincipal.authenticated_at``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI

from rempart.detection.engine import DetectionEngine
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.factories import load_members
from tests.factories import population as synth_population
from tests.portal.conftest import Counter, World, open_counter
from tests.support.clock import FakeClock
from tests.support.practice_client import PracticeClient

PACE_SECONDS = 5  # one patient every 5 s: a sweep, far faster than an optician's counter
SWEEP = 60  # more patients than the ladder needs
TUESDAY = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 10:00 in Paris
_REFERENCE = re.compile(r"<code>(\d{3}) ([a-z-]+)</code>")


class _Clock:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock()


def fresh_detection(app: FastAPI, runtime: Runtime, clock: FakeClock) -> None:
    """A new engine with counters of its own, so each sweep starts from the same clean state."""
    previous: DetectionEngine | None = getattr(app.state, "detection", None)
    if previous is not None:
        previous.drain()
        previous.close()
    app.state.detection = DetectionEngine.build(runtime, clock=_Clock(clock), prefix=f"t{uuid.uuid4().hex}")


@pytest.fixture
def patients(runtime: Runtime, world: World, population: list[MemberRecord]) -> list[MemberRecord]:
    """Enough members covered today for a sweep (their identities are searched for in responses)."""
    records = synth_population(3 * SWEEP, seed=29, first_number=5000)
    load_members(runtime, world.insurer, records)
    population.extend(records)
    world.members.extend(records)
    covered = [r for r in world.patients() if r in records]
    assert len(covered) >= SWEEP
    return covered[:SWEEP]


@dataclass(frozen=True)
class Answer:
    status: int
    step: str  # "answered", "slow-down", "step-up", "suspended", or what else was said


def api_step(response: httpx.Response) -> Answer:
    if response.status_code in (200, 404):
        return Answer(response.status_code, "answered" if response.status_code == 200 else "no-matching-rights")
    slug = str(response.json().get("type", "")).rsplit("/", 1)[-1] if response.content else ""
    # Practice software cannot confirm with a passkey: its step-up is "checks refused for now".
    step = {"checks-refused": "step-up", "access-suspended": "suspended"}.get(slug, slug)
    return Answer(response.status_code, step)


def portal_step(response: httpx.Response) -> Answer:
    if response.status_code in (200, 404):
        return Answer(response.status_code, "answered" if response.status_code == 200 else "no-matching-rights")
    found = _REFERENCE.search(response.text)
    slug = found.group(2) if found else f"status-{response.status_code}"
    step = {"step-up-required": "step-up", "access-suspended": "suspended"}.get(slug, slug)
    return Answer(response.status_code, step)


def sweep(
    check: Callable[[MemberRecord], httpx.Response],
    classify: Callable[[httpx.Response], Answer],
    patients: list[MemberRecord],
    clock: FakeClock,
) -> tuple[list[Answer], list[httpx.Response]]:
    """Distinct patients one after the other at a steady pace, until the access is suspended."""
    answers, responses = [], []
    for patient in patients:
        response = check(patient)
        answers.append(classify(response))
        responses.append(response)
        if answers[-1].step == "suspended":
            break
        clock.advance(seconds=PACE_SECONDS)
    return answers, responses


def first(answers: list[Answer], step: str) -> int | None:
    """The 1-based number of the first request that got ``step``."""
    return next((n for n, a in enumerate(answers, start=1) if a.step == step), None)


def send(counter: Counter, path: str, data: dict[str, str]) -> httpx.Response:
    return counter.user.client.post(path, data={**data, "csrf_token": counter.user.csrf_token or ""})


def api_body(world: World, patient: MemberRecord) -> dict[str, Any]:
    fields: dict[str, Any] = world.card_fields(patient)
    fields["birth_rank"] = int(fields["birth_rank"])
    return fields


def test_a_portal_sweep_is_slowed_stepped_up_and_suspended_at_the_api_s_request_numbers(
    app: FastAPI, runtime: Runtime, world: World, clock: FakeClock, patients: list[MemberRecord]
) -> None:
    # A Tuesday at opening time (the fixture's day is a Sunday, when every threshold is halved).
    clock.now = TUESDAY
    # The portal first: its session is fresh (an idle portal session ends after 15 minutes).
    fresh_detection(app, runtime, clock)
    portal = open_counter(app, runtime, login="balayage@port.test")
    portal.user.client.cookies.set("lang", "en")
    portal.page("/counter")
    in_portal, pages = sweep(lambda p: send(portal, "/counter", world.card_fields(p)), portal_step, patients, clock)

    fresh_detection(app, runtime, clock)
    software = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique du Quai")
    through_api, _ = sweep(
        lambda p: software.post("/api/v1/rights-checks", json=api_body(world, p)), api_step, patients, clock
    )

    steps = ("slow-down", "step-up", "suspended")
    api_numbers = {step: first(through_api, step) for step in steps}
    portal_numbers = {step: first(in_portal, step) for step in steps}
    print(f"\nrequest number of each step: API {api_numbers}, portal {portal_numbers}")
    assert None not in api_numbers.values(), through_api
    assert api_numbers["slow-down"] < api_numbers["step-up"] < api_numbers["suspended"]  # type: ignore[operator]
    assert portal_numbers == api_numbers, (in_portal, through_api)
    # Request by request, the same answer (the statuses too: 429, 403, 403). With the optician's
    # defaults on a Tuesday morning and a patient every 5 s: slowed at 6, stepped up at 11, suspended at 21.
    assert [a.step for a in in_portal] == [a.step for a in through_api]
    assert [a.status for a in in_portal] == [a.status for a in through_api]

    # Each step in the portal is a readable page that says what to do.
    slowed = pages[first(in_portal, "slow-down") - 1]  # type: ignore[operator]
    assert slowed.status_code == 429
    assert "Please slow down" in slowed.text
    assert int(slowed.headers["retry-after"]) > 0
    assert f"You may try again in {slowed.headers['retry-after']} seconds." in slowed.text
    stepped = pages[first(in_portal, "step-up") - 1]  # type: ignore[operator]
    assert stepped.status_code == 403
    assert "Confirm it is you" in stepped.text
    assert 'href="/step-up?next=/counter"' in stepped.text
    suspended = pages[first(in_portal, "suspended") - 1]  # type: ignore[operator]
    assert suspended.status_code == 403
    assert "Access suspended" in suspended.text
    # Nothing of a patient leaves on any page of the sweep.
    for page in pages:
        for patient in patients:
            assert patient.nir not in page.text
            assert patient.birth_date.isoformat() not in page.text
    # Once suspended, the session is gone: the next check is not made.
    after = send(portal, "/counter", world.card_fields(patients[-1]))
    assert after.status_code in (303, 401, 403)
    assert "/quotes/new?check=" not in after.text


def test_after_a_step_up_in_the_portal_checks_carry_on(
    app: FastAPI, runtime: Runtime, world: World, clock: FakeClock, patients: list[MemberRecord]
) -> None:
    clock.now = TUESDAY
    fresh_detection(app, runtime, clock)
    counter = open_counter(app, runtime, login="presse@port.test")
    counter.page("/counter")
    answers: list[Answer] = []
    for patient in patients:
        answer = portal_step(send(counter, "/counter", world.card_fields(patient)))
        answers.append(answer)
        if answer.step == "step-up":
            break
        clock.advance(seconds=PACE_SECONDS)
    assert answers[-1].step == "step-up", answers
    asked = first(answers, "step-up")

    clock.advance(seconds=5)
    confirmed = counter.user.step_up()
    assert confirmed.status_code == 200, confirmed.text
    # Still one check at a time while slowed down (``slow_interval``), but no longer refused.
    clock.advance(seconds=25)
    again = send(counter, "/counter", world.card_fields(patients[0]))

    assert again.status_code == 200, again.text
    assert "/quotes/new?check=" in again.text
    assert asked is not None
