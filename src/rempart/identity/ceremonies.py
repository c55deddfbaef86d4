"""The passkey ceremonies a person goes through, each one unit of work: login, enrolment through a
one-time link, recovery, step-up, adding a passkey.

Each ``do_*`` function writes its ceremony and its security events and commits. A refused ceremony
still leaves its trace: the spent challenge, the flagged passkey and the security events the refusal
wrote are committed before the error goes out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from rempart.errors import RempartError, Unauthenticated
from rempart.identity.accounts import enrolment_digest, open_enrolment, roles_of, use_recovery_code
from rempart.identity.context import IdentityServices
from rempart.identity.events import record_event
from rempart.identity.models import Account, AccountSession, AccountStatus, Passkey, SecurityEventKind
from rempart.identity.notify import Notifier
from rempart.identity.passkeys import (
    CeremonyStart,
    finish_login,
    finish_registration,
    finish_step_up,
    login_options,
    registration_options,
    step_up_options,
)
from rempart.identity.permissions import Role
from rempart.identity.sessions import OpenedSession, open_session, rotate_session


@contextmanager
def keep_refusal_record(session: Session) -> Iterator[None]:
    """Commit what a refused ceremony wrote (its trace) before its error goes out."""
    try:
        yield
    except RempartError:
        session.commit()
        raise


@dataclass(frozen=True)
class SignedIn:
    account: Account
    opened: OpenedSession
    roles: frozenset[Role]


def _sign_in(
    *,
    session: Session,
    identity: IdentityServices,
    account: Account,
    address: str | None,
    user_agent: str | None,
    replaces: str | None,
) -> SignedIn:
    opened = open_session(
        session=session,
        account=account,
        now=identity.clock(),
        address=address,
        user_agent=user_agent,
        replaces=replaces,
    )
    session.commit()
    return SignedIn(account=account, opened=opened, roles=roles_of(session, account.id))


# -- login ----------------------------------------------------------------------------------------


def do_start_login(*, session: Session, identity: IdentityServices, login: str, now: datetime) -> CeremonyStart:
    started = login_options(session=session, identity=identity, login=login, now=now)
    session.commit()
    return started


def do_login(
    *,
    session: Session,
    identity: IdentityServices,
    ceremony_id: uuid.UUID,
    credential: dict[str, Any],
    address: str | None,
    user_agent: str | None,
    replaces: str | None,
) -> SignedIn:
    """A session for the account that proved itself; ``replaces`` is the browser's session, if any."""
    with keep_refusal_record(session):
        account = finish_login(
            session=session,
            identity=identity,
            ceremony_id=ceremony_id,
            credential=credential,
            now=identity.clock(),
            address=address,
        )
    return _sign_in(
        session=session, identity=identity, account=account, address=address, user_agent=user_agent, replaces=replaces
    )


# -- enrolment and recovery -----------------------------------------------------------------------


def do_start_enrolment(*, session: Session, identity: IdentityServices, token: str, now: datetime) -> CeremonyStart:
    _enrolment, account = open_enrolment(session, token=token, now=now)
    started = registration_options(
        session=session, identity=identity, account=account, now=now, enrolment_hash=enrolment_digest(token)
    )
    session.commit()
    return started


def do_enrol(
    *,
    session: Session,
    identity: IdentityServices,
    token: str,
    ceremony_id: uuid.UUID,
    credential: dict[str, Any],
    name: str,
    now: datetime,
    address: str | None,
    user_agent: str | None,
    replaces: str | None,
) -> SignedIn:
    """The end of enrolment: the passkey registered through the link, the link spent, the account
    active, its ``enrolment_completed`` event, and its first session, in one transaction."""
    with keep_refusal_record(session):
        enrolment, account = open_enrolment(session, token=token, now=now)
        finish_registration(
            session=session,
            identity=identity,
            ceremony_id=ceremony_id,
            credential=credential,
            name=name,
            now=now,
            address=address,
            enrolment_hash=enrolment_digest(token),
        )
    enrolment.used_at = now
    account.status = AccountStatus.ACTIVE
    record_event(
        session=session,
        kind=SecurityEventKind.ENROLMENT_COMPLETED,
        at=now,
        account_id=account.id,
        address=address,
        purpose=enrolment.purpose.value,
    )
    return _sign_in(
        session=session, identity=identity, account=account, address=address, user_agent=user_agent, replaces=replaces
    )


def do_recover(
    *, session: Session, notifier: Notifier, login: str, code: str, now: datetime, address: str | None
) -> str:
    """Spend a recovery code; returns the one-time enrolment token for a new passkey."""
    token = use_recovery_code(session=session, notifier=notifier, login=login, code=code, now=now, address=address)
    session.commit()
    return token


# -- step-up --------------------------------------------------------------------------------------


def do_start_step_up(
    *, session: Session, identity: IdentityServices, account_id: uuid.UUID | None, session_hash: bytes, now: datetime
) -> CeremonyStart:
    account = session.get(Account, account_id)
    if account is None:
        raise Unauthenticated("sign in with a passkey")
    started = step_up_options(session=session, identity=identity, account=account, session_hash=session_hash, now=now)
    session.commit()
    return started


def do_step_up(
    *,
    session: Session,
    identity: IdentityServices,
    ceremony_id: uuid.UUID,
    credential: dict[str, Any],
    account_id: uuid.UUID,
    row: AccountSession,
    now: datetime,
    address: str | None,
) -> OpenedSession:
    """A fresh passkey check: the session gets a new id and CSRF token (a privilege change)."""
    with keep_refusal_record(session):
        finish_step_up(
            session=session,
            identity=identity,
            ceremony_id=ceremony_id,
            credential=credential,
            account_id=account_id,
            session_hash=row.id_hash,
            now=now,
            address=address,
        )
    rotated = rotate_session(session=session, row=row, now=now, step_up=True)
    session.commit()
    return rotated


# -- another passkey for a signed-in account --------------------------------------------------------


def do_start_adding_passkey(
    *, session: Session, identity: IdentityServices, account: Account, now: datetime, session_hash: bytes
) -> CeremonyStart:
    started = registration_options(
        session=session, identity=identity, account=account, now=now, session_hash=session_hash
    )
    session.commit()
    return started


def do_add_passkey(
    *,
    session: Session,
    identity: IdentityServices,
    account_id: uuid.UUID | None,
    ceremony_id: uuid.UUID,
    credential: dict[str, Any],
    name: str,
    now: datetime,
    address: str | None,
    session_hash: bytes,
) -> Passkey:
    passkey = finish_registration(
        session=session,
        identity=identity,
        ceremony_id=ceremony_id,
        credential=credential,
        name=name,
        now=now,
        address=address,
        session_hash=session_hash,
    )
    if passkey.account_id != account_id:
        raise Unauthenticated("sign in with a passkey")
    session.commit()
    return passkey
