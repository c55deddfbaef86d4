"""The second approval of a payment run, at the service: two approvers at the same moment make one
run; the requester is refused by Python and by the database's own constraint."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from rempart.errors import Conflict
from rempart.identity.permissions import Role, permissions_of
from rempart.identity.principal import StaffPrincipal
from rempart.payments import approval
from rempart.payments.approval import OwnRunRequest, RunRequestDecided, do_approve_run, do_ask_for_run
from rempart.payments.approval_models import PaymentRunRequest
from rempart.payments.models import PaymentRun
from rempart.runtime import Runtime
from rempart.tenancy import bind_tenant, tenant
from tests.backoffice2.conftest import billed
from tests.portal.conftest import World
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient


def administrator(world: World) -> StaffPrincipal:
    roles = frozenset({Role.INSURER_ADMIN})
    return StaffPrincipal(
        insurer_id=world.insurer.id, account_id=uuid.uuid4(), roles=roles, permissions=permissions_of(roles)
    )


def asked(runtime: Runtime, world: World, requester: StaffPrincipal) -> uuid.UUID:
    with runtime.sessions() as session:
        request = do_ask_for_run(session, staff=requester, cutoff=world.clock().date(), now=world.clock()).request
        assert request is not None
        return request.id


def decide_by_hand(runtime: Runtime, world: World, request_id: uuid.UUID, staff: StaffPrincipal) -> None:
    with runtime.sessions() as session:
        bind_tenant(session, world.insurer.id)
        row = session.get_one(PaymentRunRequest, (world.insurer.id, request_id))
        row.decided_by, row.decided_at = staff.account_id, world.clock()
        row.status = approval.RunRequestStatus.REFUSED
        session.commit()


def test_two_approvers_at_once_make_one_run(
    runtime: Runtime, world: World, pharmacy: PracticeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(approval, "SECOND_APPROVAL_CENTS", 1)
    billed(world, runtime, pharmacy, review=False)
    request_id = asked(runtime, world, administrator(world))
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def approve(staff: StaffPrincipal) -> None:
        start.wait()
        with runtime.sessions() as session:
            try:
                do_approve_run(session, staff=staff, request_id=request_id, now=world.clock())
                outcomes.append("ran")
            except Conflict:
                outcomes.append("refused")

    threads = [threading.Thread(target=approve, args=(administrator(world),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ran", "refused"]
    with runtime.sessions() as session, tenant(session, world.insurer.id):
        assert session.scalar(select(func.count()).select_from(PaymentRun)) == 1


def test_the_requester_cannot_approve_in_python_nor_in_the_database(
    runtime: Runtime, world: World, pharmacy: PracticeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(approval, "SECOND_APPROVAL_CENTS", 1)
    billed(world, runtime, pharmacy, review=False)
    requester = administrator(world)
    request_id = asked(runtime, world, requester)
    with runtime.sessions() as session, pytest.raises(OwnRunRequest):
        do_approve_run(session, staff=requester, request_id=request_id, now=world.clock())
    # Written around the service, the database's constraint still says no.
    with pytest.raises(IntegrityError):
        decide_by_hand(runtime, world, request_id, requester)
    approver = administrator(world)
    with runtime.sessions() as session:
        run = do_approve_run(session, staff=approver, request_id=request_id, now=world.clock())
        assert run.claim_count == 1
    with runtime.sessions() as session, pytest.raises(RunRequestDecided):
        do_approve_run(session, staff=administrator(world), request_id=request_id, now=world.clock())


def test_the_api_keeps_the_same_rule_as_the_back_office(
    app: Any, runtime: Runtime, world: World, pharmacy: PracticeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``POST /api/v1/insurers/{id}/payment-runs`` is no way around the second approval: a big run
    waits (202); its requester cannot approve it; a second staff member's approval makes it once."""
    monkeypatch.setattr(approval, "SECOND_APPROVAL_CENTS", 1)
    billed(world, runtime, pharmacy, review=False)
    first = PortalUser.invited(
        app, runtime, login="admin1@remparts.test", roles={Role.INSURER_ADMIN}, insurer_id=world.insurer.id
    )
    second = PortalUser.invited(
        app, runtime, login="admin2@remparts.test", roles={Role.INSURER_ADMIN}, insurer_id=world.insurer.id
    )
    base = f"/api/v1/insurers/{world.insurer.id}"
    day = {"cutoff_date": world.clock().date().isoformat()}
    waiting = first.post(f"{base}/payment-runs", json=day, headers={"Idempotency-Key": "big-run-1"})
    resent = first.post(f"{base}/payment-runs", json=day, headers={"Idempotency-Key": "big-run-1"})
    assert waiting.status_code == 202, waiting.text
    request_id = waiting.json()["request_id"]
    assert resent.status_code == 202
    assert resent.headers["Idempotent-Replayed"] == "true"
    assert resent.json()["request_id"] == request_id  # one request, however often it is sent
    assert first.post(f"{base}/payment-run-requests/{request_id}/approve").status_code == 403
    ran = second.post(f"{base}/payment-run-requests/{request_id}/approve")
    assert ran.status_code == 201, ran.text
    assert second.post(f"{base}/payment-run-requests/{request_id}/approve").status_code == 409
    # Everything is paid: another run would be empty, so none is made.
    nothing = first.post(f"{base}/payment-runs", json={"cutoff_date": world.clock().date().isoformat()})
    assert nothing.status_code == 409
    assert nothing.headers["content-type"] == "application/problem+json"
    assert nothing.json()["type"].endswith("/nothing-due")
    with runtime.sessions() as session, tenant(session, world.insurer.id):
        assert session.scalar(select(func.count()).select_from(PaymentRun)) == 1
