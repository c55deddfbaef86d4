"""The insurer API's lists come a page at a time, on both databases (and, on PostgreSQL, served as
the application role under row-level security): products, members imports, member exports and the
prior approvals waiting for a person. Each row comes once and in order, rows made at the same
instant included; the last page has no ``next`` and no ``Link``; a cursor no ``next`` link gave is a
422 ``cursor-invalid`` and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, inspect, select

from rempart.approvals.models import ApprovalStatus, PriorApproval
from rempart.audit.models import AccessEvent
from rempart.identity.permissions import Role
from rempart.insurers.jobs import ImportStatus, MembersImportJob
from rempart.insurers.models import Product
from rempart.members.export_models import ExportStatus, MemberExport
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.approvals.test_approvals import ask
from tests.eligibility.world import World, build_world, frames, practice_principal, rights_check
from tests.insurers.test_insurer_api import OPTICS
from tests.support.paging import refuses_cursor, walk
from tests.support.portal import PortalUser

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=6)
    population.extend(built.records)
    return built


@pytest.fixture
def staff(app: FastAPI, runtime: Runtime, world: World) -> PortalUser:
    return PortalUser.invited(
        app, runtime, login="bureau@mutuelle.test", roles={Role.INSURER_ADMIN, Role.CLAIMS_AGENT},
        insurer_id=world.insurer.id,
    )  # fmt: skip


def _ids(rows: Sequence[Any], *, newest_first: bool, at: str = "created_at") -> list[str]:
    """The ids of ``rows`` in a list's order: by (time, id), both ascending or both descending."""
    return [str(r.id) for r in sorted(rows, key=lambda r: (getattr(r, at), r.id), reverse=newest_first)]


def _count(runtime: Runtime, table: type[Any]) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_products_are_walked_page_by_page(runtime: Runtime, world: World, staff: PortalUser) -> None:
    path = f"/api/v1/insurers/{world.insurer.id}/products"
    for code in ("NOUVEAU", "JEUNES", "SENIOR", "FAMILLE"):
        made = staff.post(path, json={"code": code, "name": f"Formule {code}", "guarantees": [OPTICS]})
        assert made.status_code == 201, made.text
    with runtime.sessions() as session:
        expected = _ids(session.scalars(select(Product).where(Product.insurer_id == world.insurer.id)).all(),
                        newest_first=False)  # fmt: skip
    assert len(expected) == 7

    seen = walk(staff.get, path, rows="products", limit=2)

    with runtime.sessions() as session:
        codes = {product.id: product.code for product in session.scalars(select(Product))}
    assert [p["code"] for p in seen] == [codes[uuid.UUID(i)] for i in expected]
    refuses_cursor(staff.get, path)


def test_members_imports_are_walked_page_by_page(runtime: Runtime, world: World, staff: PortalUser) -> None:
    jobs = [
        MembersImportJob(
            insurer_id=world.insurer.id,
            id=uuid.uuid4(),
            status=ImportStatus.DONE,
            file_format="csv",
            rows_total=10,
            rows_done=10,
            started_by=uuid.uuid4(),
            created_at=T0 + timedelta(minutes=i // 2),  # two at each instant
            finished_at=T0 + timedelta(minutes=i // 2, seconds=30),
        )
        for i in range(7)
    ]
    with runtime.sessions.begin() as session:
        session.add_all(jobs)
    path = f"/api/v1/insurers/{world.insurer.id}/members-imports"

    seen = walk(staff.get, path, rows="jobs", limit=3)

    assert [j["job_id"] for j in seen] == _ids(jobs, newest_first=True)
    refuses_cursor(staff.get, path)


def test_member_exports_are_walked_page_by_page(runtime: Runtime, world: World, staff: PortalUser) -> None:
    exports = [
        MemberExport(
            insurer_id=world.insurer.id,
            id=uuid.uuid4(),
            purpose="Annual statistics for the board",
            status=ExportStatus.WAITING if i % 3 else ExportStatus.REFUSED,
            requested_by=uuid.uuid4(),
            requested_at=T0 + timedelta(minutes=i // 2),
            decided_by=None if i % 3 else uuid.uuid4(),
            decided_at=None if i % 3 else T0 + timedelta(hours=1),
        )
        for i in range(6)
    ]
    with runtime.sessions.begin() as session:
        session.add_all(exports)
    path = f"/api/v1/insurers/{world.insurer.id}/member-exports"

    seen = walk(staff.get, path, rows="member_exports", limit=2)

    assert [e["export_id"] for e in seen] == _ids(exports, newest_first=True, at="requested_at")
    before = _count(runtime, MemberExport)
    refuses_cursor(staff.get, path)
    assert _count(runtime, MemberExport) == before


def test_approvals_waiting_for_a_person_are_walked_page_by_page(
    runtime: Runtime, world: World, staff: PortalUser
) -> None:
    optician = practice_principal(runtime)
    check = rights_check(world, optician, world.patient(product="CONFORT"))
    first = ask(world, optician, check.check_id, [frames()], review_threshold_cents=10_000).approval
    assert first.status is ApprovalStatus.PENDING
    # More of the same request, two made at each instant.
    with runtime.sessions.begin() as session:
        original = session.get_one(PriorApproval, (world.insurer.id, first.id))
        columns = {a.key: getattr(original, a.key) for a in inspect(PriorApproval).column_attrs}
        session.add_all(
            PriorApproval(
                **columns
                | {
                    "id": uuid.uuid4(),
                    "approval_number": f"PA-PAGES-{i}",
                    "idempotency_key": f"pages-{i}",
                    "created_at": first.created_at + timedelta(minutes=1 + i // 2),
                }
            )
            for i in range(6)
        )
    with runtime.sessions() as session:
        expected = _ids(session.scalars(select(PriorApproval)).all(), newest_first=False)
    assert len(expected) == 7
    path = f"/api/v1/insurers/{world.insurer.id}/prior-approvals"

    seen = walk(staff.get, path, rows="prior_approvals", limit=3)

    assert [a["approval_id"] for a in seen] == expected
    before = (_count(runtime, AccessEvent), _count(runtime, PriorApproval))
    refuses_cursor(staff.get, path)
    assert (_count(runtime, AccessEvent), _count(runtime, PriorApproval)) == before  # nothing shown, nothing logged
