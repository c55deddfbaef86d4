"""A product's formulas change from a day the insurer chooses, never for care already given, and a
retired product takes no new members while its contracts go on."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.eligibility.lookup import coverage
from rempart.errors import Conflict, ValidationFailed
from rempart.identity.models import SecurityEvent, SecurityEventKind
from rempart.identity.permissions import Role
from rempart.insurers.models import CareDomain
from rempart.insurers.service import (
    GuaranteeSpec,
    cancel_scheduled_change,
    create_product,
    delete_product,
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
from tests.support.clock import FakeClock

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

    unnamed = admin.post(f"{base}/CONFORT/retire", json={"retired_on": today.isoformat()})
    retired = admin.post(f"{base}/CONFORT/retire", json={"retired_on": today.isoformat(), "successor_code": "PREMIUM"})
    backdated = admin.post(f"{base}/PREMIUM/retire", json={"retired_on": (today - timedelta(days=1)).isoformat()})
    report = import_members(
        runtime=runtime, path=_members_file(tmp_path, existing + newcomers), amc_number=world.insurer.amc_number
    )

    assert unnamed.status_code == 422  # contracts use it: a successor is named
    assert unnamed.headers["content-type"] == "application/problem+json"
    assert "successor_code" in unnamed.json()["detail"]
    assert retired.status_code == 200, retired.text
    assert retired.json()["retired_on"] == today.isoformat()
    assert retired.json()["successor_code"] == "PREMIUM"
    assert backdated.status_code == 422
    assert admin.get(f"{base}/PREMIUM").json()["retired_on"] is None
    refused = {e.field for e in report.errors}
    assert refused == {"product_code"}
    assert {e.reason for e in report.errors} == {
        "the product is retired: closed to new members, put new members on PREMIUM"
    }
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
    assert reopened.json()["successor_code"] is None
    assert twice.status_code == 409
    assert report.errors == []
    assert report.contracts_created == len({r.member_number for r in newcomers})


def test_a_product_retired_from_a_later_day_still_takes_members_until_then(runtime: Runtime, world: World) -> None:
    with runtime.sessions.begin() as session:
        product = retire_product(
            session=session,
            insurer_id=world.insurer.id,
            code="CONFORT",
            on=TOMORROW,
            today=TODAY,
            successor_code="PREMIUM",
        )
        assert not product.retired(TODAY)
        assert product.retired(TOMORROW)
    with runtime.sessions() as session:
        assert product_by_code(session, world.insurer.id, "CONFORT").retired_on == TOMORROW


def test_a_product_in_use_names_an_open_successor_of_the_same_insurer(runtime: Runtime, world: World) -> None:
    """Itself, a retired product or another insurer's code are refused; a product nobody uses
    retires without one; the successor cannot be deleted while named."""
    with runtime.sessions.begin() as session:
        for successor, reason in (
            ("CONFORT", "its own successor"),
            ("NOPE", "none of this insurer's products"),
            (None, "contracts use this product"),
        ):
            with pytest.raises(ValidationFailed, match=reason):
                retire_product(
                    session=session,
                    insurer_id=world.insurer.id,
                    code="CONFORT",
                    on=TODAY,
                    today=TODAY,
                    successor_code=successor,
                )
    with runtime.sessions.begin() as session:
        create_product(
            session=session, insurer_id=world.insurer.id, code="ANCIEN", name="Ancien", guarantees=_confort(100)
        )
        create_product(
            session=session, insurer_id=world.insurer.id, code="NOUVEAU", name="Nouveau", guarantees=_confort(100)
        )
    with runtime.sessions.begin() as session:
        unused = retire_product(session=session, insurer_id=world.insurer.id, code="ANCIEN", on=TODAY, today=TODAY)
        assert unused.successor is None
        with pytest.raises(ValidationFailed, match="retired"):
            retire_product(
                session=session,
                insurer_id=world.insurer.id,
                code="CONFORT",
                on=TODAY,
                today=TODAY,
                successor_code="ANCIEN",
            )
        retired = retire_product(
            session=session,
            insurer_id=world.insurer.id,
            code="CONFORT",
            on=TODAY,
            today=TODAY,
            successor_code="NOUVEAU",
        )
        assert retired.successor is not None
        assert retired.successor.code == "NOUVEAU"
    with runtime.sessions.begin() as session, pytest.raises(Conflict, match="CONFORT names this one"):
        delete_product(session=session, insurer_id=world.insurer.id, code="NOUVEAU")


def test_changing_or_retiring_a_product_asks_for_step_up_and_is_a_security_event(
    app: FastAPI, runtime: Runtime, world: World, clock: FakeClock
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"
    body = {"name": "Confort", "guarantees": [OPTICS]}
    retire = {"retired_on": TODAY.isoformat(), "successor_code": "PREMIUM"}

    clock.advance(minutes=6)  # the passkey check of the login is no longer fresh
    stale = [
        admin.request("PUT", f"{base}/CONFORT", json=body),
        admin.post(f"{base}/CONFORT/retire", json=retire),
        admin.post(f"{base}/CONFORT/reopen"),
        admin.delete(f"{base}/CONFORT/scheduled"),
    ]
    for answer in stale:
        assert answer.status_code == 401, answer.text
        assert answer.json()["type"].endswith("/step-up-required")
    assert admin.get(f"{base}/CONFORT").json()["retired_on"] is None  # nothing changed

    assert admin.step_up().status_code == 200
    changed = admin.request("PUT", f"{base}/CONFORT", json=body)
    retired = admin.post(f"{base}/CONFORT/retire", json=retire)
    reopened = admin.post(f"{base}/CONFORT/reopen")

    assert (changed.status_code, retired.status_code, reopened.status_code) == (200, 200, 200)
    with runtime.sessions() as session:
        events = session.scalars(
            select(SecurityEvent).where(
                SecurityEvent.account_id == admin.account_id,
                SecurityEvent.kind.in_([SecurityEventKind.PRODUCT_CHANGED, SecurityEventKind.PRODUCT_RETIRED]),
            )
        ).all()
    details = sorted((e.kind.value, json.loads(e.detail)["change"]) for e in events)
    assert details == [("product_changed", "formulas"), ("product_changed", "reopened"), ("product_retired", "retired")]
    assert all(json.loads(e.detail)["product"] == "CONFORT" for e in events)
