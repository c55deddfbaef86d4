"""Passkey ceremonies over JSON: login, enrolment through a one-time link, recovery, step-up,
logout. There is no password endpoint, and none may be added: see DESIGN.md, invariant 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from rempart.errors import RempartError, Unauthenticated
from rempart.identity.accounts import (
    enrolment_digest,
    open_enrolment,
    roles_of,
    use_recovery_code,
)
from rempart.identity.context import IdentityDep
from rempart.identity.deps import PUBLIC, AnyCaller, client_address, requires
from rempart.identity.events import record_event
from rempart.identity.models import Account, AccountSession, AccountStatus, SecurityEventKind
from rempart.identity.passkeys import (
    finish_login,
    finish_registration,
    finish_step_up,
    login_options,
    registration_options,
    step_up_options,
)
from rempart.identity.permissions import Permission
from rempart.identity.schemas import (
    CeremonyOut,
    CeremonyVerifyIn,
    CsrfOut,
    EnrolmentOptionsIn,
    EnrolmentVerifyIn,
    LoginOptionsIn,
    LoginVerifyIn,
    RecoveryIn,
    RecoveryOut,
    SignedInOut,
)
from rempart.identity.sessions import (
    clear_session_cookie,
    open_session,
    rotate_session,
    session_hash,
    session_token,
    set_session_cookie,
)
from rempart.web.deps import SessionDep

router = APIRouter(prefix="/api/v1/auth", tags=["identity"])


@contextmanager
def keep_refusal_record(session: Session) -> Iterator[None]:
    """A refused ceremony still leaves its trace: the spent challenge, the flagged passkey and the
    security events the refusal wrote are committed before the error goes out."""
    try:
        yield
    except RempartError:
        session.commit()
        raise


def _signed_in(
    request: Request, response: Response, session: Session, identity: IdentityDep, account: Account
) -> SignedInOut:
    opened = open_session(
        session=session,
        account=account,
        now=identity.clock(),
        address=client_address(request),
        user_agent=request.headers.get("user-agent"),
        replaces=session_token(request, identity),
    )
    session.commit()
    set_session_cookie(response, identity, opened.token)
    return SignedInOut(
        account_id=account.id,
        roles=sorted(r.value for r in roles_of(session, account.id)),
        csrf_token=opened.row.csrf_token,
    )


@router.post("/login/options", dependencies=[PUBLIC], response_model=CeremonyOut)
def start_login(body: LoginOptionsIn, request: Request, session: SessionDep, identity: IdentityDep) -> CeremonyOut:
    login = body.login.strip().lower()
    identity.throttle.attempt(kind="login", login=login, address=client_address(request))
    started = login_options(session=session, identity=identity, login=login, now=identity.clock())
    session.commit()
    return CeremonyOut(ceremony_id=started.ceremony_id, public_key=started.options)


@router.post("/login/verify", dependencies=[PUBLIC], response_model=SignedInOut)
def verify_login(
    body: LoginVerifyIn, request: Request, response: Response, session: SessionDep, identity: IdentityDep
) -> SignedInOut:
    with keep_refusal_record(session):
        account = finish_login(
            session=session,
            identity=identity,
            ceremony_id=body.ceremony_id,
            credential=body.credential,
            now=identity.clock(),
            address=client_address(request),
        )
    return _signed_in(request, response, session, identity, account)


@router.post("/enrolment/options", dependencies=[PUBLIC], response_model=CeremonyOut)
def start_enrolment(body: EnrolmentOptionsIn, session: SessionDep, identity: IdentityDep) -> CeremonyOut:
    now = identity.clock()
    _enrolment, account = open_enrolment(session, token=body.token, now=now)
    started = registration_options(
        session=session, identity=identity, account=account, now=now, enrolment_hash=enrolment_digest(body.token)
    )
    session.commit()
    return CeremonyOut(ceremony_id=started.ceremony_id, public_key=started.options)


@router.post("/enrolment/verify", dependencies=[PUBLIC], response_model=SignedInOut)
def verify_enrolment(
    body: EnrolmentVerifyIn, request: Request, response: Response, session: SessionDep, identity: IdentityDep
) -> SignedInOut:
    now = identity.clock()
    with keep_refusal_record(session):
        enrolment, account = open_enrolment(session, token=body.token, now=now)
        finish_registration(
            session=session,
            identity=identity,
            ceremony_id=body.ceremony_id,
            credential=body.credential,
            name=body.name,
            now=now,
            address=client_address(request),
            enrolment_hash=enrolment_digest(body.token),
        )
    enrolment.used_at = now
    account.status = AccountStatus.ACTIVE
    record_event(
        session=session,
        kind=SecurityEventKind.ENROLMENT_COMPLETED,
        at=now,
        account_id=account.id,
        address=client_address(request),
        purpose=enrolment.purpose.value,
    )
    return _signed_in(request, response, session, identity, account)


@router.post("/recovery", dependencies=[PUBLIC], response_model=RecoveryOut)
def recover(body: RecoveryIn, request: Request, session: SessionDep, identity: IdentityDep) -> RecoveryOut:
    """Spend a recovery code for a one-time link to register a new passkey. Opens no session."""
    address = client_address(request)
    identity.throttle.attempt(kind="recovery", login=body.login.strip().lower(), address=address)
    token = use_recovery_code(
        session=session,
        notifier=identity.notifier,
        login=body.login,
        code=body.code,
        now=identity.clock(),
        address=address,
    )
    session.commit()
    return RecoveryOut(enrolment_token=token, enrol_url=f"{identity.origin}/enrol#{token}")


def _current_session(request: Request, session: Session, identity: IdentityDep) -> AccountSession:
    token = session_token(request, identity)
    row = session.get(AccountSession, session_hash(token)) if token else None
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("sign in with a passkey")
    return row


@router.post("/step-up/options", dependencies=[requires(Permission.ACCOUNT_SELF_MANAGE)], response_model=CeremonyOut)
def start_step_up(caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep) -> CeremonyOut:
    row = _current_session(request, session, identity)
    account = session.get(Account, caller.account_id)
    if account is None:
        raise Unauthenticated("sign in with a passkey")
    started = step_up_options(
        session=session, identity=identity, account=account, session_hash=row.id_hash, now=identity.clock()
    )
    session.commit()
    return CeremonyOut(ceremony_id=started.ceremony_id, public_key=started.options)


@router.post("/step-up/verify", dependencies=[requires(Permission.ACCOUNT_SELF_MANAGE)], response_model=CsrfOut)
def verify_step_up(
    *,
    body: CeremonyVerifyIn,
    caller: AnyCaller,
    request: Request,
    response: Response,
    session: SessionDep,
    identity: IdentityDep,
) -> CsrfOut:
    row = _current_session(request, session, identity)
    assert caller.account_id is not None  # a session principal always has its account
    now = identity.clock()
    with keep_refusal_record(session):
        finish_step_up(
            session=session,
            identity=identity,
            ceremony_id=body.ceremony_id,
            credential=body.credential,
            account_id=caller.account_id,
            session_hash=row.id_hash,
            now=now,
            address=client_address(request),
        )
    # A privilege change: the session gets a new id and CSRF token.
    rotated = rotate_session(session=session, row=row, now=now, step_up=True)
    session.commit()
    set_session_cookie(response, identity, rotated.token)
    return CsrfOut(csrf_token=rotated.row.csrf_token)


@router.post("/logout", dependencies=[requires(Permission.ACCOUNT_SELF_MANAGE)], status_code=204)
def logout(caller: AnyCaller, request: Request, response: Response, session: SessionDep, identity: IdentityDep) -> None:
    row = _current_session(request, session, identity)
    now = identity.clock()
    row.revoked_at, row.revoked_reason = now, "logout"
    record_event(
        session=session,
        kind=SecurityEventKind.LOGOUT,
        at=now,
        account_id=caller.account_id,
        address=client_address(request),
    )
    session.commit()
    clear_session_cookie(response, identity)
