"""The FHIR facade is a way into the practice API, not around it: the same kill switches cut it (and
the practice API's switch cuts it too), the same detection ladder slows, refuses and suspends a
sweep through it at the same request as through the native API, and a client's checks through both
are counted together, so that the facade doubles no quota."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.detection.models import KillSwitchScope
from rempart.detection.service import do_set_kill_switch
from rempart.identity.models import ApiClient
from rempart.insurers.models import Product
from rempart.members.service import write_members
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from rempart.web.fhir_wire import FHIR_JSON
from tests.eligibility.world import World
from tests.factories import TODAY, make_insurer, population
from tests.fhir.test_eligibility import (
    NATIVE,
    app,
    fhir_request,
    fhir_seen,
    native_request,
    no_identity_in_fhir_responses,
    post_fhir,
    world,
)
from tests.support.clock import FakeClock
from tests.support.practice_client import PracticeClient

__all__ = ["app", "fhir_seen", "no_identity_in_fhir_responses", "world"]  # the fixtures this module uses


def _switch(app: FastAPI, runtime: Runtime, scope: KillSwitchScope, target: str, clock: FakeClock) -> None:
    with runtime.sessions() as session:
        do_set_kill_switch(
            session=session,
            engine=app.state.detection,
            scope=scope,
            target=target,
            reason="Practice software keys stolen",
            operator_id=uuid.uuid4(),
            now=clock(),
        )


def _problem_code(answer: httpx.Response) -> str:
    if answer.headers["content-type"].startswith(FHIR_JSON):
        return str(answer.json()["issue"][0]["details"]["coding"][0]["code"])
    return str(answer.json()["type"]).rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    ("scope", "target", "native_cut"),
    [
        (KillSwitchScope.CHANNEL, "practice_api", True),
        (KillSwitchScope.CHANNEL, "fhir", False),
        (KillSwitchScope.PROFESSION, "pharmacist", True),
        (KillSwitchScope.PRACTICE, "the practice", True),
    ],
    ids=["practice-api", "fhir", "profession", "practice"],
)
def test_a_kill_switch_cuts_the_facade_as_it_cuts_the_native_api(
    *,
    app: FastAPI,
    runtime: Runtime,
    world: World,
    clock: FakeClock,
    fhir_seen: list[httpx.Response],
    scope: KillSwitchScope,
    target: str,
    native_cut: bool,
) -> None:
    pharmacy = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
    patient = world.patient()
    assert post_fhir(pharmacy, fhir_request(world, patient), fhir_seen).status_code == 200

    _switch(app, runtime, scope, str(pharmacy.practice_id) if scope is KillSwitchScope.PRACTICE else target, clock)
    clock.advance(seconds=2)
    by_fhir = post_fhir(pharmacy, fhir_request(world, patient), fhir_seen)
    native = pharmacy.post(NATIVE, json=native_request(world, patient))

    assert by_fhir.status_code == 503, by_fhir.text
    assert by_fhir.headers["content-type"].startswith(FHIR_JSON)
    issue = by_fhir.json()["issue"][0]
    assert (issue["code"], _problem_code(by_fhir)) == ("transient", "channel-disconnected")
    assert "offline attestation" in issue["diagnostics"]
    assert "identifier" not in by_fhir.text
    if native_cut:
        assert native.status_code == by_fhir.status_code
        assert _problem_code(native) == _problem_code(by_fhir)
    else:  # cutting the facade leaves the native API on
        assert native.status_code == 200


def _other_world(runtime: Runtime, members: int) -> World:
    """A second insurer with a population of its own: a sweep of it shares no patient, no insurer
    counter, with a sweep of the first."""
    insurer = make_insurer(runtime, amc_number="88450202", name="Mutuelle des Bastions")
    records = population(members, seed=31)
    with runtime.sessions.begin() as session:
        products = {p.code: p.id for p in session.scalars(select(Product).where(Product.insurer_id == insurer.id))}
        write_members(
            session=session,
            keys=runtime.keys,
            insurer_id=insurer.id,
            records=records,
            product_ids=products,
            today=TODAY,
        )
    return World(runtime=runtime, insurer=insurer, records=records)


def _sweep(
    practice: PracticeClient,
    send: Any,
    patients: list[MemberRecord],
    clock: FakeClock,
) -> list[tuple[int, str]]:
    """Distinct real patients, one every 15 seconds, until the access is refused twice running."""
    seen: list[tuple[int, str]] = []
    for patient in patients:
        answer = send(practice, patient)
        seen.append((answer.status_code, _problem_code(answer) if answer.status_code >= 400 else ""))
        if len(seen) >= 2 and seen[-1][0] >= 400 and seen[-2][0] >= 400:
            break
        clock.advance(seconds=15)
    return seen


def test_a_sweep_of_patients_through_the_facade_meets_the_native_ladder_at_the_same_request(
    *,
    app: FastAPI,
    runtime: Runtime,
    world: World,
    clock: FakeClock,
    fhir_seen: list[httpx.Response],
    population: list[MemberRecord],
) -> None:
    other = _other_world(runtime, members=20)
    population.extend(other.records)
    native_optician = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN)
    fhir_optician = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN)

    def native(practice: PracticeClient, patient: MemberRecord) -> httpx.Response:
        return practice.post(NATIVE, json=native_request(world, patient))

    def through_fhir(practice: PracticeClient, patient: MemberRecord) -> httpx.Response:
        return post_fhir(practice, fhir_request(other, patient), fhir_seen)

    by_native = _sweep(native_optician, native, world.patients(), clock)
    clock.advance(hours=2)
    by_fhir = _sweep(fhir_optician, through_fhir, other.patients(), clock)

    assert by_fhir == by_native
    assert any(status in (403, 429) for status, _ in by_fhir), by_fhir
    assert sum(status == 200 for status, _ in by_fhir) < 12  # an optician's burst: refused within a dozen
    with runtime.sessions() as session:
        statuses = {
            client.id: client.status
            for client in session.scalars(
                select(ApiClient).where(ApiClient.id.in_([native_optician.client_id, fhir_optician.client_id]))
            )
        }
    assert statuses[fhir_optician.client_id] == statuses[native_optician.client_id]


def test_misses_through_both_doors_are_counted_together(
    app: FastAPI, runtime: Runtime, world: World, clock: FakeClock, fhir_seen: list[httpx.Response]
) -> None:
    """One client alternating the native API and the facade is slowed down at the same miss as one
    using the native API only: the facade is not a second quota."""
    patient = world.patient()
    only_native = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
    both = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)

    def misses(practice: PracticeClient, *, alternate: bool, first: int) -> list[int]:
        statuses = []
        for n in range(12):
            card = f"09{first + n:08d}"
            if alternate and n % 2:
                answer = post_fhir(practice, fhir_request(world, patient, member_number=card), fhir_seen)
            else:
                answer = practice.post(NATIVE, json=native_request(world, patient, member_number=card))
            statuses.append(answer.status_code)
            clock.advance(seconds=5)
        return statuses

    alone = misses(only_native, alternate=False, first=0)
    clock.advance(hours=2)
    mixed = misses(both, alternate=True, first=100)

    assert mixed == alone
    assert alone[0] == 404
    assert any(status in (403, 429) for status in alone), alone
