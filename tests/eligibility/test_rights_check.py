"""Rights checks at the service level: the match through blind indexes, what the answer carries,
and that every kind of miss looks and costs the same."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from rempart.audit.models import Outcome
from rempart.eligibility.models import RightsCheck
from rempart.eligibility.service import (
    MAX_BATCH,
    CareDomainOutsideProfession,
    MissKind,
    RightsAnswer,
    RightsMiss,
    RightsQuery,
    check_rights,
    check_rights_batch,
)
from rempart.errors import ValidationFailed
from rempart.insurers.models import CareDomain
from rempart.members.models import BeneficiaryRole
from rempart.pricing.engine import CeilingKey
from rempart.pricing.service import consume_ceilings, lock_ceilings
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from rempart.tenancy import bind_tenant
from tests.eligibility.world import NOW, World, build_world, practice_principal
from tests.factories import TODAY


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime)


def check(world: World, query: RightsQuery, profession: Profession = Profession.OPTICIAN) -> RightsAnswer | RightsMiss:
    caller = practice_principal(world.runtime, profession)
    with world.runtime.sessions.begin() as session:
        return check_rights(session=session, keys=world.runtime.keys, caller=caller, query=query, now=NOW)


def test_a_patient_with_card_nir_and_birth_date_gets_their_cover_and_nothing_else(world: World) -> None:
    patient = world.patient(product="CONFORT")

    answer = check(world, world.query(patient))

    assert isinstance(answer, RightsAnswer)
    assert answer.covered
    assert answer.care_date == TODAY
    assert (answer.valid_from, answer.valid_to) == (patient.contract_start, patient.contract_end)
    (optics,) = answer.domains  # an optician sees optics only
    assert optics.care_domain is CareDomain.OPTI
    assert optics.formula is not None
    assert (optics.formula.brss_rate_pct, optics.formula.flat_amount_cents) == (200, 15_000)
    assert optics.remaining_ceiling_cents == 30_000
    assert optics.third_party_payment
    assert optics.prior_approval_required
    with world.runtime.sessions() as session:
        stored = session.scalars(select(RightsCheck)).one()
    assert stored.id == answer.check_id
    assert stored.care_date == TODAY
    assert stored.expires_at > NOW


def test_the_hit_is_in_the_access_log_with_the_beneficiary_and_the_fields_disclosed(world: World) -> None:
    answer = check(world, world.query(world.patient()))

    assert isinstance(answer, RightsAnswer)
    (logged,) = world.events()
    assert logged.operation == "rights_check"
    assert logged.outcome is Outcome.DISCLOSED
    assert logged.beneficiary_id == answer.beneficiary_id
    assert logged.insurer_id == world.insurer.id
    assert logged.reference == str(answer.check_id)
    assert "guarantees" in logged.fields
    assert "nir" not in logged.fields


def test_a_professional_sees_only_the_domains_of_their_profession(world: World) -> None:
    patient = world.patient()

    answer = check(world, world.query(patient), Profession.PHARMACIST)

    assert isinstance(answer, RightsAnswer)
    assert [d.care_domain for d in answer.domains] == [CareDomain.PHAR]
    with pytest.raises(CareDomainOutsideProfession):
        check(world, world.query(patient, care_domains=(CareDomain.DENT,)), Profession.PHARMACIST)


def test_a_child_on_a_parents_nir_is_told_apart_by_birth_date(world: World) -> None:
    child = next(
        r
        for r in world.patients(role=BeneficiaryRole.CHILD)
        if any(p.nir == r.nir and p.role is BeneficiaryRole.HOLDER for p in world.records)
    )
    holder = next(p for p in world.records if p.nir == child.nir and p.role is BeneficiaryRole.HOLDER)

    as_child = check(world, world.query(child))
    as_holder = check(world, world.query(holder))

    assert isinstance(as_child, RightsAnswer)
    assert isinstance(as_holder, RightsAnswer)
    assert as_child.beneficiary_id != as_holder.beneficiary_id


def test_the_date_of_care_must_be_near_today(world: World) -> None:
    with pytest.raises(ValidationFailed):
        check(world, world.query(world.patient(), care_date=TODAY + timedelta(days=400)))


def _misses(world: World) -> dict[MissKind | str, RightsQuery]:
    patient = world.patient()
    ended = world.ended()
    other = world.patients()[1]
    return {
        MissKind.UNKNOWN_INSURER: world.query(patient, amc_number="99999999"),
        MissKind.UNKNOWN_CARD: world.query(patient, member_number="0999999999"),
        "wrong NIR": world.query(patient, nir=other.nir),
        "wrong date of birth": world.query(patient, birth_date=patient.birth_date - timedelta(days=1)),
        "wrong birth rank": world.query(patient, birth_rank=patient.birth_rank + 1),
        MissKind.NOT_IN_FORCE: world.query(ended),
        "not yet started": world.query(patient, care_date=patient.contract_start - timedelta(days=1))
        if patient.contract_start > TODAY - timedelta(days=700)
        else world.query(ended),
    }


def test_every_kind_of_miss_is_a_miss_with_its_internal_reason_logged(world: World) -> None:
    expected = {
        MissKind.UNKNOWN_INSURER: MissKind.UNKNOWN_INSURER,
        MissKind.UNKNOWN_CARD: MissKind.UNKNOWN_CARD,
        "wrong NIR": MissKind.IDENTITY_MISMATCH,
        "wrong date of birth": MissKind.IDENTITY_MISMATCH,
        "wrong birth rank": MissKind.IDENTITY_MISMATCH,
        MissKind.NOT_IN_FORCE: MissKind.NOT_IN_FORCE,
        "not yet started": MissKind.NOT_IN_FORCE,
    }
    for name, query in _misses(world).items():
        outcome = check(world, query)
        assert isinstance(outcome, RightsMiss), name
        assert outcome.kind is expected[name], name
        assert outcome.error.problem() == {
            "type": "/problems/no-matching-rights",
            "title": "No matching rights",
            "status": 404,
            "detail": "No rights match this card, NIR and date of birth on the date of care.",
        }
    logged = world.events()
    assert [e.outcome for e in logged] == [Outcome.MISS] * len(expected)
    assert all(e.fields == "" for e in logged)
    assert [e.reference for e in logged] == [k.value for k in expected.values()]
    with world.runtime.sessions() as session:
        assert session.scalars(select(RightsCheck)).all() == []


@contextmanager
def statements(runtime: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(runtime.engine, "before_cursor_execute", record)


def test_every_kind_of_miss_runs_the_same_statements_as_the_others(world: World) -> None:
    caller = practice_principal(world.runtime)
    check(world, world.query(world.patient()))  # opens the insurer's keys into the process cache
    runs: dict[object, list[str]] = {}
    for name, query in [("hit", world.query(world.patient())), *_misses(world).items()]:
        with statements(world.runtime) as seen, world.runtime.sessions.begin() as session:
            check_rights(session=session, keys=world.runtime.keys, caller=caller, query=query, now=NOW)
        runs[name] = seen

    hit = runs.pop("hit")
    reference = runs[MissKind.UNKNOWN_INSURER]
    assert all(seen == reference for seen in runs.values()), {k: len(v) for k, v in runs.items()}
    # A hit does the same work, and stores the check it answers with.
    assert [s for s in hit if "rights_checks" not in s] == reference


def test_remaining_ceilings_follow_consumption(world: World) -> None:
    patient = world.patient(product="CONFORT")
    first = check(world, world.query(patient))
    assert isinstance(first, RightsAnswer)
    key = CeilingKey(CareDomain.OPTI, TODAY.year)
    with world.runtime.sessions.begin() as session:
        bind_tenant(session, world.insurer.id)
        lock_ceilings(session, insurer_id=world.insurer.id, beneficiary_id=first.beneficiary_id, ceilings={key: 30_000})
        consume_ceilings(
            session,
            insurer_id=world.insurer.id,
            beneficiary_id=first.beneficiary_id,
            consumed={key: 12_345},
            ceilings={key: 30_000},
        )

    again = check(world, world.query(patient))

    assert isinstance(again, RightsAnswer)
    assert again.domains[0].remaining_ceiling_cents == 30_000 - 12_345


def test_a_batch_answers_each_appointment_and_logs_each_as_one_check(world: World) -> None:
    caller = practice_principal(world.runtime, Profession.PHARMACIST)
    a, b = world.patients()[:2]
    queries = [world.query(a), world.query(a, birth_rank=a.birth_rank + 1), world.query(b)]

    with world.runtime.sessions.begin() as session:
        outcomes = check_rights_batch(session=session, keys=world.runtime.keys, caller=caller, queries=queries, now=NOW)

    assert [type(o) for o in outcomes] == [RightsAnswer, RightsMiss, RightsAnswer]
    logged = world.events()
    assert [(e.operation, e.outcome) for e in logged] == [
        ("rights_check_batch", Outcome.DISCLOSED),
        ("rights_check_batch", Outcome.MISS),
        ("rights_check_batch", Outcome.DISCLOSED),
    ]
    with pytest.raises(ValidationFailed), world.runtime.sessions.begin() as session:
        check_rights_batch(
            session=session,
            keys=world.runtime.keys,
            caller=caller,
            queries=[world.query(a)] * (MAX_BATCH + 1),
            now=NOW,
        )
    with pytest.raises(CareDomainOutsideProfession), world.runtime.sessions.begin() as session:
        check_rights_batch(
            session=session,
            keys=world.runtime.keys,
            caller=caller,
            queries=[world.query(a), replace(world.query(b), care_domains=(CareDomain.OPTI,))],
            now=NOW,
        )
    assert len(world.events()) == 3
