"""Suspending a suspended account changes nothing: the same answer, no second security event."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from rempart.identity.accounts import suspend_account
from rempart.identity.models import SecurityEvent, SecurityEventKind
from rempart.identity.permissions import Role
from rempart.insurers.service import create_insurer
from rempart.runtime import Runtime
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser


@pytest.fixture
def agent(app: FastAPI, runtime: Runtime) -> PortalUser:
    with runtime.sessions.begin() as session:
        insurer_id: Any = create_insurer(
            session=session, keys=runtime.keys, amc_number="12345678", name="Mutuelle A"
        ).id
    return PortalUser.invited(
        app, runtime, login="agent@mutuelle.test", roles={Role.CLAIMS_AGENT}, insurer_id=insurer_id
    )


def _suspensions(runtime: Runtime, account_id: Any) -> int:
    with runtime.sessions.begin() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(SecurityEvent)
                .where(
                    SecurityEvent.account_id == account_id, SecurityEvent.kind == SecurityEventKind.ACCOUNT_SUSPENDED
                )
            )
            or 0
        )


def test_an_operator_suspending_twice_gets_the_same_answer_and_one_event(
    agent: PortalUser, app: FastAPI, runtime: Runtime
) -> None:
    operator = PortalUser.invited(app, runtime, login="soc@rempart.test", roles={Role.SECURITY_OPERATOR})
    path = f"/api/v1/security/accounts/{agent.account_id}/suspend"

    answers = [operator.post(path, json={"reason": "bulk_access"}) for _ in range(3)]

    assert [a.status_code for a in answers] == [204, 204, 204], [a.text for a in answers]
    assert _suspensions(runtime, agent.account_id) == 1
    seen = operator.get("/api/v1/security/events", params={"account_id": str(agent.account_id)}).json()
    assert [e["kind"] for e in seen].count("account_suspended") == 1
    assert agent.sign_in().status_code == 401


def test_the_service_says_whether_it_suspended_now(agent: PortalUser, runtime: Runtime, clock: FakeClock) -> None:
    with runtime.sessions.begin() as session:
        first = suspend_account(session=session, account_id=agent.account_id, now=clock(), reason="manual")
    with runtime.sessions.begin() as session:
        again = suspend_account(session=session, account_id=agent.account_id, now=clock(), reason="other")

    assert (first, again) == (True, False)
    assert _suspensions(runtime, agent.account_id) == 1
    assert agent.get("/api/v1/me/account").status_code == 401
