"""Server-side sessions for humans (DESIGN.md, invariant 3).

The cookie holds 256 random bits; the table keeps only their SHA-256, so a database dump opens no
session. Sessions end after 15 minutes idle or 12 hours in all, are rotated at login and at every
privilege change (step-up), and can be revoked one by one, all at once, or by containment.
Every state-changing request on a session carries the session's CSRF token (header
``X-CSRF-Token``, or the ``csrf_token`` field of a form) and, when the browser sends one, an Origin
equal to ours.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.errors import NotFound, Unauthenticated
from rempart.identity.context import IdentityServices
from rempart.identity.errors import PermissionDenied
from rempart.identity.events import record_event
from rempart.identity.models import Account, AccountSession, AccountStatus, SecurityEventKind
from rempart.identity.permissions import permissions_of
from rempart.identity.principal import Channel, Principal
from rempart.professionals.models import Practice, PracticeStatus, Professional, ProfessionalStatus

IDLE_TIMEOUT = timedelta(minutes=15)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
STEP_UP_MAX_AGE = timedelta(minutes=5)
# last_seen_at is written at most this often: a page full of requests costs one write.
TOUCH_INTERVAL = timedelta(seconds=30)
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(PermissionDenied):
    slug = "csrf-refused"
    title = "The request did not come from a Rempart page"


class StepUpRequired(PermissionDenied):
    status = 401
    slug = "step-up-required"
    title = "Confirm with your passkey"


def cookie_name(identity: IdentityServices) -> str:
    # The __Host- prefix pins the cookie to this exact host, path / and HTTPS.
    return "__Host-rempart_session" if identity.settings.cookies_secure else "rempart_session"


def session_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class OpenedSession:
    token: str
    row: AccountSession


def open_session(
    *,
    session: Session,
    account: Account,
    now: datetime,
    address: str | None,
    user_agent: str | None,
    replaces: str | None = None,
) -> OpenedSession:
    """A new session for an account that just proved itself; any session it replaces ends."""
    if replaces:
        _revoke_token(session, replaces, now, "rotated")
    seen_here = session.scalar(
        select(AccountSession.ref).where(AccountSession.account_id == account.id, AccountSession.address == address)
    )
    token = secrets.token_urlsafe(32)
    row = AccountSession(
        id_hash=session_hash(token),
        ref=uuid.uuid4(),
        account_id=account.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + ABSOLUTE_TIMEOUT,
        authenticated_at=now,
        address=address,
        user_agent=(user_agent or "")[:200] or None,
    )
    session.add(row)
    record_event(
        session=session,
        kind=SecurityEventKind.LOGIN,
        at=now,
        account_id=account.id,
        practice_id=account.practice_id,
        address=address,
        session_ref=str(row.ref),
    )
    if seen_here is None:
        record_event(
            session=session,
            kind=SecurityEventKind.NEW_DEVICE,
            at=now,
            account_id=account.id,
            practice_id=account.practice_id,
            address=address,
        )
    session.flush()
    return OpenedSession(token=token, row=row)


def rotate_session(*, session: Session, row: AccountSession, now: datetime, step_up: bool) -> OpenedSession:
    """Same session, new id and CSRF token (privilege change); the old id stops working at once."""
    token = secrets.token_urlsafe(32)
    new_row = AccountSession(
        id_hash=session_hash(token),
        ref=uuid.uuid4(),
        account_id=row.account_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=row.created_at,
        last_seen_at=now,
        expires_at=row.expires_at,
        authenticated_at=now if step_up else row.authenticated_at,
        address=row.address,
        user_agent=row.user_agent,
    )
    row.revoked_at, row.revoked_reason = now, "rotated"
    session.add(new_row)
    session.flush()
    return OpenedSession(token=token, row=new_row)


def _revoke_token(session: Session, token: str, now: datetime, reason: str) -> None:
    row = session.get(AccountSession, session_hash(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at, row.revoked_reason = now, reason


def live_session(session: Session, *, token: str, now: datetime) -> AccountSession | None:
    row = session.get(AccountSession, session_hash(token)) if token else None
    if row is None or row.revoked_at is not None:
        return None
    if now >= row.expires_at or now - row.last_seen_at >= IDLE_TIMEOUT:
        return None
    return row


def sessions_of(session: Session, account_id: uuid.UUID, *, now: datetime) -> Sequence[AccountSession]:
    rows = session.scalars(
        select(AccountSession)
        .where(AccountSession.account_id == account_id, AccountSession.revoked_at.is_(None))
        .order_by(AccountSession.created_at.desc())
    ).all()
    return [r for r in rows if now < r.expires_at and now - r.last_seen_at < IDLE_TIMEOUT]


def revoke_session(
    *, session: Session, account_id: uuid.UUID, ref: uuid.UUID, now: datetime, address: str | None
) -> None:
    row = session.scalar(
        select(AccountSession).where(AccountSession.ref == ref, AccountSession.account_id == account_id)
    )
    if row is None or row.revoked_at is not None:
        raise NotFound("no such session")
    row.revoked_at, row.revoked_reason = now, "revoked"
    record_event(
        session=session,
        kind=SecurityEventKind.SESSION_REVOKED,
        at=now,
        account_id=account_id,
        address=address,
        session_ref=str(ref),
    )


def do_end_session(
    *, session: Session, account_id: uuid.UUID, ref: uuid.UUID, now: datetime, address: str | None
) -> None:
    """One of the account's sessions ends, with its ``session_revoked`` event."""
    revoke_session(session=session, account_id=account_id, ref=ref, now=now, address=address)
    session.commit()


def do_logout(
    *, session: Session, row: AccountSession, account_id: uuid.UUID | None, now: datetime, address: str | None
) -> None:
    """The session the browser holds ends, with its ``logout`` event."""
    row.revoked_at, row.revoked_reason = now, "logout"
    record_event(session=session, kind=SecurityEventKind.LOGOUT, at=now, account_id=account_id, address=address)
    session.commit()


# -- cookies --------------------------------------------------------------------------------------


def set_session_cookie(response: Response, identity: IdentityServices, token: str) -> None:
    response.set_cookie(
        cookie_name(identity),
        token,
        max_age=int(ABSOLUTE_TIMEOUT.total_seconds()),
        path="/",
        secure=identity.settings.cookies_secure,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, identity: IdentityServices) -> None:
    response.delete_cookie(
        cookie_name(identity), path="/", secure=identity.settings.cookies_secure, httponly=True, samesite="strict"
    )


def session_token(request: Request, identity: IdentityServices) -> str | None:
    return request.cookies.get(cookie_name(identity))


def session_of_request(
    request: Request, *, session: Session, identity: IdentityServices, refuse_revoked: bool
) -> AccountSession:
    """The session row behind the request's cookie: Unauthenticated without one, and if
    ``refuse_revoked``, when it was revoked."""
    token = session_token(request, identity)
    row = session.get(AccountSession, session_hash(token)) if token else None
    if row is None or (refuse_revoked and row.revoked_at is not None):
        raise Unauthenticated("sign in with a passkey")
    return row


# -- the principal behind a session cookie ---------------------------------------------------------


def _check_csrf(request: Request, identity: IdentityServices, row: AccountSession) -> None:
    if request.method in _SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != identity.origin:
        raise CsrfRefused("this request came from another site")
    submitted = request.headers.get(CSRF_HEADER) or getattr(request.state, "csrf_submitted", None)
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (TypeError), and a
    # header's Latin-1 bytes or a form field's accents are what a forged or mangled token may carry.
    if not submitted or not secrets.compare_digest(str(submitted).encode(), row.csrf_token.encode()):
        raise CsrfRefused("the page's security token is missing or stale; reload the page")


def principal_from_request(request: Request, *, session: Session, identity: IdentityServices) -> Principal | None:
    token = session_token(request, identity)
    if not token:
        return None
    now = identity.clock()
    row = live_session(session, token=token, now=now)
    if row is None:
        return None
    account = session.get(Account, row.account_id)
    if account is None or account.status is not AccountStatus.ACTIVE:
        return None
    _check_csrf(request, identity, row)
    from rempart.identity.accounts import roles_of  # accounts imports this module's peers

    roles = roles_of(session, account.id)
    professional = session.get(Professional, account.professional_id) if account.professional_id else None
    if account.practice_id is not None:
        practice = session.get(Practice, account.practice_id)
        if practice is None or practice.status is not PracticeStatus.ACTIVE:
            return None
    if professional is not None and professional.status is not ProfessionalStatus.ACTIVE:
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
        session.commit()
    request.state.session_row_hash = row.id_hash
    return Principal(
        channel=Channel.PORTAL,
        roles=roles,
        permissions=permissions_of(roles),
        address=request.client.host if request.client else None,
        account_id=account.id,
        credential_ref="ses:" + str(row.ref),
        insurer_id=account.insurer_id,
        beneficiary_id=account.beneficiary_id,
        practice_id=account.practice_id,
        professional_id=professional.id if professional else None,
        rpps=professional.rpps if professional else None,
        profession=professional.profession if professional else None,
        authenticated_at=row.authenticated_at,
    )


def require_recent_passkey(principal: Principal, now: datetime) -> None:
    """Sensitive actions need a passkey check within the last five minutes (step-up)."""
    if principal.channel is not Channel.PORTAL or principal.authenticated_at is None:
        raise StepUpRequired("this action needs a fresh passkey check")
    if now - principal.authenticated_at > STEP_UP_MAX_AGE:
        raise StepUpRequired("confirm with your passkey to continue (step-up)")
