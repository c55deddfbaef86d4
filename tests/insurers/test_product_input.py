"""Products through the insurer API: input the platform cannot hold or honour is refused with a
problem, on both databases, and changes nothing."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.eligibility.world import World, build_world
from tests.insurers.test_insurer_api import OPTICS, staff


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=4)
    population.extend(built.records)
    return built


@pytest.mark.parametrize("name", ["Formule\x00confort", "Formule\nconfort", "   "])
def test_a_product_name_with_control_characters_or_blank_is_refused(
    app: FastAPI, runtime: Runtime, world: World, name: str
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"

    created = admin.post(base, json={"code": "NOUVEAU", "name": name, "guarantees": [OPTICS]})
    renamed = admin.request("PUT", f"{base}/CONFORT", json={"name": name, "guarantees": [OPTICS]})

    for answer in (created, renamed):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["field"] == "name"
    assert admin.get(f"{base}/NOUVEAU").status_code == 404
    assert admin.get(f"{base}/CONFORT").json()["name"] != name


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_product_code_no_product_can_have_is_simply_not_found(
    app: FastAPI, runtime: Runtime, world: World, method: str
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    body = {"name": "Formule", "guarantees": [{"care_domain": "OPTI"}]} if method == "PUT" else None

    answer = admin.request(method, f"/api/v1/insurers/{world.insurer.id}/products/CONF%00ORT", json=body)

    assert answer.status_code == 404, answer.text
    assert answer.json()["type"].endswith("/not-found")


@pytest.mark.parametrize("domain", ["PHAR", "CONS", "LABO"])
def test_prior_approval_is_refused_where_no_approval_can_be_asked_for(
    app: FastAPI, runtime: Runtime, world: World, domain: str
) -> None:
    # Professionals can ask for prior approvals in optics, hearing aids, dental care and hospital
    # stays only: elsewhere the flag would reject every claim as "approval-missing".
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/products"
    formula = {"care_domain": domain, "prior_approval_required": True}

    created = admin.post(base, json={"code": "NOUVEAU", "name": "Formule", "guarantees": [OPTICS, formula]})
    changed = admin.request("PUT", f"{base}/CONFORT", json={"name": "Formule", "guarantees": [formula]})

    for answer in (created, changed):
        assert answer.status_code == 422, answer.text
        assert "prior approval" in answer.json()["detail"]
    assert admin.get(f"{base}/NOUVEAU").status_code == 404
    assert admin.get(f"{base}/CONFORT").json()["name"] != "Formule"
    approved = admin.post(
        base, json={"code": "NOUVEAU", "name": "Formule", "guarantees": [{**OPTICS, "prior_approval_required": True}]}
    )
    assert approved.status_code == 201, approved.text
