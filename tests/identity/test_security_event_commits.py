"""No identity answer leaves whose security event did not commit, on SQLite and PostgreSQL.

The service a route calls writes its security event and commits (STYLE, rule 5). While the commit
of a transaction that carries a security event is refused (a full disk, a lost connection), the end
of an enrolment opens no session, a new client gets no id, a revoked client keeps working and a
logout ends nothing: the answer is a 5xx problem and nothing of the change is kept. The same request
then succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI
from joserfc.jwk import ECKey
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from rempart.identity.models import Account, AccountStatus, ApiClient, SecurityEvent, SecurityEventKind
from rempart.identity.permissions import Role
from rempart.runtime import Runtime
from tests.support.portal import PortalUser, invite
from tests.support.practice_client import PracticeClient

WHOAMI = "/api/v1/auth/whoami"


class CommitRefused(Exception):
    """The database refused the commit."""


@contextmanager
def security_event_commits_refused() -> Iterator[None]:
    """While open, a session whose transaction holds a new security event fails at its commit."""

    def before_flush(session: Session, _context: object, _instances: object) -> None:
        if any(isinstance(row, SecurityEvent) for row in session.new):
            session.info["wrote_security_event"] = True

    def before_commit(session: Session) -> None:
        wrote = any(isinstance(row, SecurityEvent) for row in session.new)
        if session.info.pop("wrote_security_event", False) or wrote:
            raise CommitRefused

    def after_rollback(session: Session) -> None:
        session.info.pop("wrote_security_event", None)

    listeners = [("before_flush", before_flush), ("before_commit", before_commit), ("after_rollback", after_rollback)]
    for name, listener in listeners:
        event.listen(Session, name, listener)
    try:
        yield
    finally:
        for name, listener in listeners:
            event.remove(Session, name, listener)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code >= 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.json()) == {"type", "title", "status", "detail"}
    assert "set-cookie" not in response.headers


def events(runtime: Runtime, kind: SecurityEventKind) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(SecurityEvent).where(SecurityEvent.kind == kind)) or 0


def test_an_enrolment_whose_event_did_not_commit_opens_no_session(app: FastAPI, runtime: Runtime) -> None:
    practice = PracticeClient.register(app, runtime)
    invitation = invite(
        app,
        runtime,
        login="titulaire@pharmacie.test",
        roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
    )
    browser = PortalUser.browser(app, login="titulaire@pharmacie.test")

    with security_event_commits_refused():
        assert_refused(browser.enrol(invitation.token))
    assert browser.get("/api/v1/me/account").status_code == 401
    with runtime.sessions() as session:
        account = session.get(Account, invitation.account.id)
        assert account is not None
        assert account.status is AccountStatus.INVITED
    assert events(runtime, SecurityEventKind.ENROLMENT_COMPLETED) == 0

    assert browser.enrol(invitation.token).status_code == 200
    assert browser.get("/api/v1/me/account").status_code == 200
    assert events(runtime, SecurityEventKind.ENROLMENT_COMPLETED) == 1


def test_a_client_change_whose_event_did_not_commit_changes_nothing(app: FastAPI, runtime: Runtime) -> None:
    pharmacy = PracticeClient.register(app, runtime)
    admin = PortalUser.invited(
        app,
        runtime,
        login="titulaire@pharmacie.test",
        roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
        practice_id=pharmacy.practice_id,
        professional_id=pharmacy.professional_id,
    )
    new_client = {"name": "Caisse 2", "public_jwk": dict(ECKey.generate_key("P-256", private=True).as_dict())}

    with security_event_commits_refused():
        assert_refused(admin.post("/api/v1/practice/clients", json=new_client))
        assert_refused(admin.post(f"/api/v1/practice/clients/{pharmacy.client_id}/revoke"))
    with runtime.sessions() as session:
        practice_clients = (
            select(func.count()).select_from(ApiClient).where(ApiClient.practice_id == pharmacy.practice_id)
        )
        assert session.scalar(practice_clients) == 1
    assert pharmacy.get(WHOAMI).status_code == 200
    assert events(runtime, SecurityEventKind.CLIENT_CREATED) == 0
    assert events(runtime, SecurityEventKind.CLIENT_REVOKED) == 0

    assert admin.post("/api/v1/practice/clients", json=new_client).status_code == 201
    assert admin.post(f"/api/v1/practice/clients/{pharmacy.client_id}/revoke").json()["status"] == "revoked"
    assert pharmacy.request_token().status_code == 401


def test_a_logout_whose_event_did_not_commit_ends_no_session(app: FastAPI, runtime: Runtime) -> None:
    practice = PracticeClient.register(app, runtime)
    admin = PortalUser.invited(
        app,
        runtime,
        login="titulaire@pharmacie.test",
        roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
    )

    with security_event_commits_refused():
        assert_refused(admin.post("/api/v1/auth/logout"))
    assert admin.get("/api/v1/me/account").status_code == 200
    assert events(runtime, SecurityEventKind.LOGOUT) == 0

    assert admin.post("/api/v1/auth/logout").status_code == 204
    assert admin.get("/api/v1/me/account").status_code == 401
    assert events(runtime, SecurityEventKind.LOGOUT) == 1
