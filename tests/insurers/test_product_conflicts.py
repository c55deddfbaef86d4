"""Products changed by two parties at once: the one who loses gets the 409 problem it would have got a
moment later, never a 500, on both databases.

The other party writes at the one moment that matters: after the service has checked (no product
with this code, no contract on this product) and before its own insert or delete reaches the
database. A hook on the served app's sessions, fired when a flush is about to write a product, has
it commit there; a race between threads hits that moment only now and then."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rempart.identity.permissions import Role
from rempart.insurers.models import CareDomain, Product
from rempart.insurers.service import GuaranteeSpec, create_product
from rempart.members.models import Contract
from rempart.members.service import write_members
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.eligibility.world import World, build_world
from tests.factories import TODAY, population
from tests.insurers.test_insurer_api import OPTICS, staff


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=4)
    population.extend(built.records)
    return built


@contextmanager
def meanwhile(app_runtime: Runtime, wants: Callable[[Session], bool], other: Callable[[], None]) -> Iterator[list[int]]:
    """Run ``other`` (committing on its own connection) just before the served app's first flush
    that ``wants`` says is the one to race; yields how many times it ran."""
    ran: list[int] = []

    def before_flush(session: Session, _context: object, _instances: object) -> None:
        if not ran and wants(session):
            ran.append(1)
            other()

    event.listen(app_runtime.sessions, "before_flush", before_flush)
    try:
        yield ran
    finally:
        event.remove(app_runtime.sessions, "before_flush", before_flush)


def _products(runtime: Runtime, world: World, code: str) -> list[str]:
    with runtime.sessions() as session:
        return list(
            session.scalars(select(Product.name).where(Product.insurer_id == world.insurer.id, Product.code == code))
        )


def test_the_same_product_created_twice_at_once_is_created_once_and_the_other_gets_409(
    app: FastAPI, app_runtime: Runtime, runtime: Runtime, world: World
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"

    def twin() -> None:  # the same request from a second tab, a retry, another admin
        with runtime.sessions.begin() as session:
            create_product(
                session=session,
                insurer_id=world.insurer.id,
                code="NOUVEAU",
                name="Jumeau",
                guarantees=[GuaranteeSpec(CareDomain.OPTI, sante_100_class_a=True)],
            )

    def creating(session: Session) -> bool:
        return any(isinstance(o, Product) for o in session.new)

    with meanwhile(app_runtime, creating, twin) as ran:
        answer = admin.post(base, json={"code": "NOUVEAU", "name": "Nouvelle formule", "guarantees": [OPTICS]})

    assert ran == [1]
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/conflict")
    assert answer.json()["detail"] == "a product with this code exists"
    assert _products(runtime, world, "NOUVEAU") == ["Jumeau"]


def test_a_product_deleted_while_an_import_puts_a_contract_on_it_stays_and_the_deletion_gets_409(
    app: FastAPI, app_runtime: Runtime, runtime: Runtime, world: World
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"
    created = admin.post(base, json={"code": "NOUVEAU", "name": "Nouvelle formule", "guarantees": [OPTICS]})
    assert created.status_code == 201, created.text
    family = [replace(r, product_code="NOUVEAU") for r in population(1, seed=11, first_number=7000)]

    def importing() -> None:  # a members import writing a batch of contracts on the product
        with runtime.sessions.begin() as session:
            product_id = session.scalar(select(Product.id).where(Product.code == "NOUVEAU"))
            assert product_id is not None
            write_members(
                session=session,
                keys=runtime.keys,
                insurer_id=world.insurer.id,
                records=family,
                product_ids={"NOUVEAU": product_id},
                today=TODAY,
            )

    def deleting(session: Session) -> bool:
        return any(isinstance(o, Product) for o in session.deleted)

    with meanwhile(app_runtime, deleting, importing) as ran:
        answer = admin.delete(f"{base}/NOUVEAU")

    assert ran == [1]
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/conflict")
    assert answer.json()["detail"] == "contracts use this product: it cannot be deleted"
    assert admin.get(f"{base}/NOUVEAU").json()["guarantees"][0]["care_domain"] == "OPTI"
    with runtime.sessions() as session:
        on_it = select(func.count()).select_from(Contract).join(Product, Product.id == Contract.product_id)
        assert session.scalar(on_it.where(Product.code == "NOUVEAU")) == 1


def test_a_constraint_broken_for_another_reason_is_not_passed_off_as_a_conflict(runtime: Runtime, world: World) -> None:
    # A formula the database refuses (the API's schema stops it before the service): no product
    # with this code exists, so this is not the 409 of a twin but the error it is.
    with pytest.raises(IntegrityError), runtime.sessions.begin() as session:
        create_product(
            session=session,
            insurer_id=world.insurer.id,
            code="NOUVEAU",
            name="Formule",
            guarantees=[GuaranteeSpec(care_domain=CareDomain.OPTI, brss_rate_pct=5000, sante_100_class_a=True)],
        )
    assert _products(runtime, world, "NOUVEAU") == []
