"""A product's formulas change from a day the insurer chooses, never for care already given, and a
retired product takes no new members while its contracts go on."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from rempart.eligibility.lookup import coverage
from rempart.errors import Conflict, ValidationFailed
from rempart.identity.permissions import Role
from rempart.insurers.models import CareDomain
from rempart.insurers.service import (
    GuaranteeSpec,
    cancel_scheduled_change,
    product_by_code,
    retire_product,
    update_product,
)
from rempart.members.importer import import_members
from rempart.members.models import Beneficiary, Contract
from rempart.members.synth import synth_members, write_members_file
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.eligibility.world import World, build_world
from tests.factories import PRODUCTS, TODAY, product_guarantees
from tests.insurers.test_insurer_api import OPTICS, staff

TOMORROW = TODAY + timedelta(days=1)
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=6)
    population.extend(built.records)
    return built


def _optics_rate(runtime: Runtime, world: World, day: date) -> int | None:
    """The optics rate a CONFORT member's care on ``day`` is priced at, as the quote and the claim read it."""
    patient = world.patient(product="CONFORT")
    with runtime.sessions() as session:
        contract = (
            session.query(Contract).filter_by(insurer_id=world.insurer.id, member_number=patient.member_number).one()
        )
        beneficiary = session.query(Beneficiary).filter_by(insurer_id=world.insurer.id, contract_id=contract.id).first()
        assert beneficiary is not None
        _code, covers = coverage(
            session,
            insurer_id=world.insurer.id,
            product_id=contract.product_id,
            beneficiary_id=beneficiary.id,
            day=day,
        )
    cover = covers.get(CareDomain.OPTI)
    return None if cover is None else cover.guarantee.brss_rate_pct


def _confort(rate: int) -> list[GuaranteeSpec]:
    return [
        replace(spec, brss_rate_pct=rate) if spec.care_domain is CareDomain.OPTI else spec
        for spec in product_guarantees(*PRODUCTS["CONFORT"][1:])
    ]


def _change(runtime: Runtime, world: World, rate: int, *, on: date | None = None) -> None:
    with runtime.sessions.begin() as session:
        update_product(
            session=session,
            insurer_id=world.insurer.id,
            code="CONFORT",
            name="Confort",
            guarantees=_confort(rate),
            today=TODAY,
            effective_on=on,
        )


def test_a_change_applies_from_its_day_and_care_before_it_keeps_its_formula(runtime: Runtime, world: World) -> None:
    before = _optics_rate(runtime, world, TODAY)

    _change(runtime, world, 400, on=TOMORROW)

    assert before is not None
    assert before != 400
    assert _optics_rate(runtime, world, YESTERDAY) == before
    assert _optics_rate(runtime, world, TODAY) == before
    assert _optics_rate(runtime, world, TOMORROW) == 400
    assert _optics_rate(runtime, world, TOMORROW + timedelta(days=400)) == 400


def test_a_change_from_today_leaves_yesterdays_care_under_yesterdays_formula(runtime: Runtime, world: World) -> None:
    before = _optics_rate(runtime, world, TODAY)

    _change(runtime, world, 350)

    assert _optics_rate(runtime, world, YESTERDAY) == before
    assert _optics_rate(runtime, world, TODAY) == 350


def test_a_second_change_replaces_the_scheduled_one_and_a_withdrawal_restores_today(
    runtime: Runtime, world: World
) -> None:
    before = _optics_rate(runtime, world, TODAY)
    _change(runtime, world, 400, on=TOMORROW + timedelta(days=30))

    _change(runtime, world, 500, on=TOMORROW)

    assert _optics_rate(runtime, world, TOMORROW) == 500
    assert _optics_rate(runtime, world, TOMORROW + timedelta(days=60)) == 500  # the first one is gone
    with runtime.sessions.begin() as session:
        product = cancel_scheduled_change(session=session, insurer_id=world.insurer.id, code="CONFORT", today=TODAY)
        assert product.scheduled_after(TODAY) is None
    assert _optics_rate(runtime, world, TOMORROW + timedelta(days=60)) == before
    with runtime.sessions.begin() as session, pytest.raises(Conflict, match="no change is scheduled"):
        cancel_scheduled_change(session=session, insurer_id=world.insurer.id, code="CONFORT", today=TODAY)


def test_a_change_for_care_already_given_or_without_a_formula_is_refused_and_changes_nothing(
    runtime: Runtime, world: World
) -> None:
    before = _optics_rate(runtime, world, YESTERDAY)

    with runtime.sessions.begin() as session, pytest.raises(ValidationFailed, match="today or on a later day"):
        update_product(
            session=session,
            insurer_id=world.insurer.id,
            code="CONFORT",
            name="Confort",
            guarantees=_confort(999),
            today=TODAY,
            effective_on=YESTERDAY,
        )
    with runtime.sessions.begin() as session, pytest.raises(ValidationFailed, match="at least one care domain"):
        update_product(
            session=session, insurer_id=world.insurer.id, code="CONFORT", name="Confort", guarantees=[], today=TODAY
        )

    assert _optics_rate(runtime, world, YESTERDAY) == before
    assert _optics_rate(runtime, world, TODAY) == before


def test_the_api_schedules_shows_and_withdraws_a_change(app: FastAPI, runtime: Runtime, world: World) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    today = TODAY  # the app's clock (``clock`` fixture)
    base = f"/api/v1/insurers/{world.insurer.id}/products"
    created = admin.post(base, json={"code": "EVOLUTIF", "name": "Évolutif", "guarantees": [OPTICS]})
    assert created.status_code == 201, created.text
    later = (today + timedelta(days=10)).isoformat()

    scheduled = admin.request(
        "PUT",
        f"{base}/EVOLUTIF",
        json={"name": "Évolutif", "guarantees": [{**OPTICS, "brss_rate_pct": 300}], "effective_on": later},
    )
    past = admin.request(
        "PUT",
        f"{base}/EVOLUTIF",
        json={
            "name": "Évolutif",
            "guarantees": [OPTICS],
            "effective_on": (today - timedelta(days=1)).isoformat(),
        },
    )
    empty = admin.request("PUT", f"{base}/EVOLUTIF", json={"name": "Évolutif", "guarantees": []})

    assert scheduled.status_code == 200, scheduled.text
    shown = admin.get(f"{base}/EVOLUTIF").json()
    assert [g["brss_rate_pct"] for g in shown["guarantees"]] == [200]  # today's formula
    assert shown["scheduled"]["effective_on"] == later
    assert [g["brss_rate_pct"] for g in shown["scheduled"]["guarantees"]] == [300]
    assert past.status_code == 422
    assert past.headers["content-type"] == "application/problem+json"
    assert "later day" in past.json()["detail"]
    assert empty.status_code == 422
    assert admin.get(f"{base}/EVOLUTIF").json()["scheduled"]["effective_on"] == later  # nothing changed

    withdrawn = admin.delete(f"{base}/EVOLUTIF/scheduled")
    again = admin.delete(f"{base}/EVOLUTIF/scheduled")

    assert withdrawn.status_code == 200
    assert withdrawn.json()["scheduled"] is None
    assert [g["brss_rate_pct"] for g in withdrawn.json()["guarantees"]] == [200]
    assert again.status_code == 409


def _members_file(tmp_path: Path, records: list[MemberRecord]) -> Path:
    path = tmp_path / f"members-{uuid.uuid4().hex[:6]}.csv"
    write_members_file(path, iter(records))
    return path


def test_a_retired_product_takes_no_new_member_and_its_contracts_go_on(
    app: FastAPI, runtime: Runtime, world: World, tmp_path: Path, population: list[MemberRecord]
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"
    today = TODAY  # the app's clock (``clock`` fixture); the import runs later, on the real day
    newcomers = list(synth_members(count=2, seed=41, product_codes=["CONFORT"], today=TODAY, first_number=700))
    population.extend(newcomers)
    existing = [r for r in world.records if r.product_code == "CONFORT"]

    retired = admin.post(f"{base}/CONFORT/retire", json={"retired_on": today.isoformat()})
    backdated = admin.post(f"{base}/PREMIUM/retire", json={"retired_on": (today - timedelta(days=1)).isoformat()})
    report = import_members(
        runtime=runtime, path=_members_file(tmp_path, existing + newcomers), amc_number=world.insurer.amc_number
    )

    assert retired.status_code == 200, retired.text
    assert retired.json()["retired_on"] == today.isoformat()
    assert backdated.status_code == 422
    assert admin.get(f"{base}/PREMIUM").json()["retired_on"] is None
    refused = {e.field for e in report.errors}
    assert refused == {"product_code"}
    assert {e.reason for e in report.errors} == {"the product is retired: closed to new members"}
    assert report.contracts_created == 0
    assert report.unchanged >= len(existing)  # the contracts already on it go on
    assert _optics_rate(runtime, world, TODAY) is not None

    reopened = admin.post(f"{base}/CONFORT/reopen")
    twice = admin.post(f"{base}/CONFORT/reopen")
    report = import_members(
        runtime=runtime, path=_members_file(tmp_path, newcomers), amc_number=world.insurer.amc_number
    )

    assert reopened.status_code == 200
    assert reopened.json()["retired_on"] is None
    assert twice.status_code == 409
    assert report.errors == []
    assert report.contracts_created == len({r.member_number for r in newcomers})


def test_a_product_retired_from_a_later_day_still_takes_members_until_then(runtime: Runtime, world: World) -> None:
    with runtime.sessions.begin() as session:
        product = retire_product(session=session, insurer_id=world.insurer.id, code="CONFORT", on=TOMORROW, today=TODAY)
        assert not product.retired(TODAY)
        assert product.retired(TOMORROW)
    with runtime.sessions() as session:
        assert product_by_code(session, world.insurer.id, "CONFORT").retired_on == TOMORROW
