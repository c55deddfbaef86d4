"""A product says whether it is a "contrat responsable": true unless the insurer says otherwise,
shown by the insurer API and the products page; a responsible product that leaves out 100 % Santé
class A in optics, hearing aids or dental care is refused (422, naming the care domain) and nothing
is written; changing the flag is a change of the product like any other (step-up, security event)."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from rempart.identity.models import SecurityEvent, SecurityEventKind
from rempart.identity.permissions import Role
from rempart.insurers.models import Guarantee, Product
from rempart.insurers.service import product_by_code
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.eligibility.world import World, build_world
from tests.insurers.test_insurer_api import staff

OPTICS = {"care_domain": "OPTI", "brss_rate_pct": 200, "flat_amount_cents": 10_000, "yearly_ceiling_cents": 20_000}
OPTICS_CLASS_A = {**OPTICS, "sante_100_class_a": True}
PHARMACY = {"care_domain": "PHAR", "brss_rate_pct": 100}


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=4)
    population.extend(built.records)
    return built


def _rows(runtime: Runtime) -> tuple[int, int]:
    with runtime.sessions() as session:
        products = session.scalar(select(func.count()).select_from(Product)) or 0
        guarantees = session.scalar(select(func.count()).select_from(Guarantee)) or 0
    return int(products), int(guarantees)


def test_a_product_is_responsible_unless_the_insurer_says_otherwise(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"

    default = admin.post(base, json={"code": "RESP", "name": "Responsable", "guarantees": [OPTICS_CLASS_A]})
    not_responsible = admin.post(
        base, json={"code": "LIBRE", "name": "Libre", "guarantees": [OPTICS], "responsible": False}
    )

    assert default.status_code == 201, default.text
    assert default.json()["responsible"] is True
    assert not_responsible.status_code == 201, not_responsible.text
    assert not_responsible.json()["responsible"] is False
    assert admin.get(f"{base}/LIBRE").json()["responsible"] is False
    listed = {p["code"]: p["responsible"] for p in admin.get(base).json()["products"]}
    assert listed == {"ESSENTIEL": True, "CONFORT": True, "PREMIUM": True, "RESP": True, "LIBRE": False}
    with runtime.sessions() as session:
        assert product_by_code(session, world.insurer.id, "LIBRE").responsible is False


def test_a_responsible_product_without_class_a_in_optics_is_refused_and_nothing_is_written(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"
    before = _rows(runtime)

    omitted = admin.post(base, json={"code": "TROU", "name": "Trou", "guarantees": [OPTICS, PHARMACY]})
    said = admin.post(base, json={"code": "TROU", "name": "Trou", "guarantees": [OPTICS], "responsible": True})

    for answer in (omitted, said):
        assert answer.status_code == 422, answer.text
        assert answer.json()["type"].endswith("/validation-failed")
        assert "optics (OPTI)" in answer.json()["detail"]
    assert _rows(runtime) == before
    assert admin.get(f"{base}/TROU").status_code == 404
    # Without an optics, hearing or dental formula there is no class A to cover.
    pharmacy_only = admin.post(base, json={"code": "PHARMA", "name": "Pharmacie", "guarantees": [PHARMACY]})
    assert pharmacy_only.status_code == 201, pharmacy_only.text


def test_changing_the_flag_is_a_product_change_checked_like_the_others(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"
    made = admin.post(base, json={"code": "LIBRE", "name": "Libre", "guarantees": [OPTICS], "responsible": False})
    assert made.status_code == 201, made.text

    kept = admin.request("PUT", f"{base}/LIBRE", json={"name": "Libre", "guarantees": [OPTICS]})
    refused = admin.request("PUT", f"{base}/LIBRE", json={"name": "Libre", "guarantees": [OPTICS], "responsible": True})
    made_responsible = admin.request(
        "PUT", f"{base}/LIBRE", json={"name": "Libre", "guarantees": [OPTICS_CLASS_A], "responsible": True}
    )

    assert kept.status_code == 200, kept.text
    assert kept.json()["responsible"] is False  # absent on a change: unchanged
    assert refused.status_code == 422, refused.text
    assert "optics (OPTI)" in refused.json()["detail"]
    assert made_responsible.status_code == 200, made_responsible.text
    assert made_responsible.json()["responsible"] is True
    with runtime.sessions() as session:
        changes = session.scalars(
            select(SecurityEvent.detail).where(
                SecurityEvent.account_id == admin.account_id, SecurityEvent.kind == SecurityEventKind.PRODUCT_CHANGED
            )
        ).all()
    assert sorted(json.loads(d)["change"] for d in changes) == ["formulas", "formulas+responsible"]


def test_the_products_page_shows_whether_each_product_is_responsible(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"
    made = admin.post(base, json={"code": "LIBRE", "name": "Libre", "guarantees": [OPTICS], "responsible": False})
    assert made.status_code == 201, made.text

    page = admin.get("/insurer/products")
    form = admin.get("/insurer/products/LIBRE")

    assert page.status_code == 200, page.text
    assert '<p class="responsible" id="product-LIBRE-responsible">Non responsable</p>' in page.text
    assert '<p class="responsible" id="product-CONFORT-responsible">Contrat responsable</p>' in page.text
    assert form.status_code == 200, form.text
    assert 'id="responsible" name="responsible" type="checkbox">' in form.text  # shown unticked
    assert 'id="responsible" name="responsible" type="checkbox" checked>' in admin.get("/insurer/products/new").text
