"""The access log's lists come a page at a time, on both databases: the person's own log, the
insurer's view and the break-glass grants. Each row comes once and in order, sealed or still waiting
for the sealer, even when events share their instant; the last page has no ``next`` and no ``Link``;
a cursor no ``next`` link gave is a 422 ``cursor-invalid`` and records no reading."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import ColumnElement, func, select

from rempart.audit.keys import LocalSigningKeys
from rempart.audit.models import AccessEvent, BreakGlassGrant, BreakGlassStatus
from rempart.audit.sealing import seal_all
from rempart.identity.permissions import Role
from rempart.runtime import Runtime
from tests.audit.conftest import T0, pharmacy, record_events
from tests.audit.test_access_log import _beneficiary_id
from tests.audit.test_hostile_queries import app, world
from tests.eligibility.world import World
from tests.support.paging import refuses_cursor, walk
from tests.support.portal import PortalUser

__all__ = ["app", "world"]


def _events(runtime: Runtime, *where: ColumnElement[bool]) -> list[str]:
    """The event ids ``where`` selects, newest first (the log's order)."""
    with runtime.sessions() as session:
        rows = session.scalars(
            select(AccessEvent.event_id).where(*where).order_by(AccessEvent.occurred_at.desc(), AccessEvent.id.desc())
        )
        return [str(e) for e in rows]


def _count(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AccessEvent)) or 0)


def _some_sealed_some_waiting(runtime: Runtime, signer: LocalSigningKeys, **events: Any) -> None:
    """Events sealed and events waiting for the sealer, two at each instant."""
    record_events(runtime, 7, **events)
    seal_all(runtime.sessions, signer=signer, now=T0 + timedelta(hours=1))
    record_events(runtime, 7, **events)


def test_the_persons_own_log_is_walked_page_by_page(
    app: FastAPI, runtime: Runtime, world: World, signer: LocalSigningKeys
) -> None:
    person = _beneficiary_id(runtime, world, world.patient())
    _some_sealed_some_waiting(runtime, signer, beneficiaries=[person], insurer_id=world.insurer.id)
    me = PortalUser.invited(
        app, runtime, login="patient@exemple.test", roles={Role.BENEFICIARY}, insurer_id=world.insurer.id,
        beneficiary_id=person,
    )  # fmt: skip
    expected = _events(runtime, AccessEvent.beneficiary_id == person)
    assert len(expected) == 10

    seen = walk(me.get, "/api/v1/me/access-log", rows="accesses", limit=3)

    assert [a["event_id"] for a in seen] == expected
    before = _count(runtime)
    refuses_cursor(me.get, "/api/v1/me/access-log")
    assert _count(runtime) == before
    # A full last page says nothing of a next one.
    assert walk(me.get, "/api/v1/me/access-log", rows="accesses", limit=5) == seen


def test_the_insurers_view_is_walked_page_by_page_and_a_forged_cursor_reads_nothing(
    app: FastAPI, runtime: Runtime, world: World, signer: LocalSigningKeys
) -> None:
    practice = uuid.uuid4()
    _some_sealed_some_waiting(runtime, signer, actor=pharmacy(practice), insurer_id=world.insurer.id)
    dpo = PortalUser.invited(app, runtime, login="dpo@remparts.test", roles={Role.DPO}, insurer_id=world.insurer.id)
    path = f"/api/v1/insurers/{world.insurer.id}/access-log"
    expected = _events(runtime, AccessEvent.practice_id == practice)
    assert len(expected) == 14

    seen = walk(dpo.get, path, rows="accesses", limit=4, practice_id=str(practice))

    assert [a["event_id"] for a in seen] == expected
    before = _count(runtime)
    refuses_cursor(dpo.get, path)
    assert _count(runtime) == before  # no reading recorded: nothing was read


@pytest.mark.parametrize("status", [None, BreakGlassStatus.REQUESTED])
def test_break_glass_grants_are_walked_page_by_page(
    app: FastAPI, runtime: Runtime, world: World, status: BreakGlassStatus | None
) -> None:
    alice = PortalUser.invited(app, runtime, login="alice@rempart.test", roles={Role.SECURITY_OPERATOR})
    grants = [
        BreakGlassGrant(
            insurer_id=world.insurer.id,
            beneficiary_id=uuid.uuid4(),
            requested_by=uuid.uuid4(),
            reason="Card refused at every pharmacy",
            ticket=f"INC-2026-{i}",
            requested_at=T0 + timedelta(minutes=i // 2),  # two at each instant
            duration_minutes=30,
        )
        for i in range(7)
    ]
    with runtime.sessions.begin() as session:
        session.add_all(grants)
    expected = [str(g.id) for g in sorted(grants, key=lambda g: (g.requested_at, g.id), reverse=True)]
    params = {} if status is None else {"status": status.value}

    seen = walk(alice.get, "/api/v1/break-glass", rows=None, limit=2, **params)

    assert [g["id"] for g in seen] == expected
    refuses_cursor(alice.get, "/api/v1/break-glass")
