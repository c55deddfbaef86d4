"""Passkey ceremonies over JSON: login, enrolment through a one-time link, recovery, step-up,
logout. There is no password endpoint, and none may be added: see DESIGN.md, invariant 1."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from rempart.identity.ceremonies import (
    SignedIn,
    do_enrol,
    do_login,
    do_recover,
    do_start_enrolment,
    do_start_login,
    do_start_step_up,
    do_step_up,
)
from rempart.identity.context import IdentityDep
from rempart.identity.deps import PUBLIC, AnyCaller, client_address, requires
from rempart.identity.models import AccountSession
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
    do_logout,
    session_of_request,
    session_token,
    set_session_cookie,
)
from rempart.web.deps import SessionDep

router = APIRouter(prefix="/api/v1/auth", tags=["identity"])


def _signed_in(response: Response, identity: IdentityDep, signed_in: SignedIn) -> SignedInOut:
    set_session_cookie(response, identity, signed_in.opened.token)
    return SignedInOut(
        account_id=signed_in.account.id,
        roles=sorted(r.value for r in signed_in.roles),
        csrf_token=signed_in.opened.row.csrf_token,
    )


@router.post("/login/options", dependencies=[PUBLIC], response_model=CeremonyOut)
def start_login(body: LoginOptionsIn, request: Request, session: SessionDep, identity: IdentityDep) -> CeremonyOut:
    login = body.login.strip().lower()
    identity.throttle.attempt(kind="login", login=login, address=client_address(request))
    started = do_start_login(session=session, identity=identity, login=login, now=identity.clock())
    return CeremonyOut(ceremony_id=started.ceremony_id, public_key=started.options)


@router.post("/login/verify", dependencies=[PUBLIC], response_model=SignedInOut)
def verify_login(
    body: LoginVerifyIn, request: Request, response: Response, session: SessionDep, identity: IdentityDep
) -> SignedInOut:
    signed_in = do_login(
        session=session,
        identity=identity,
        ceremony_id=body.ceremony_id,
        credential=body.credential,
        address=client_address(request),
        user_agent=request.headers.get("user-agent"),
        replaces=session_token(request, identity),
    )
    return _signed_in(response, identity, signed_in)


@router.post("/enrolment/options", dependencies=[PUBLIC], response_model=CeremonyOut)
def start_enrolment(body: EnrolmentOptionsIn, session: SessionDep, identity: IdentityDep) -> CeremonyOut:
    started = do_start_enrolment(session=session, identity=identity, token=body.token, now=identity.clock())
    return CeremonyOut(ceremony_id=started.ceremony_id, public_key=started.options)


@router.post("/enrolment/verify", dependencies=[PUBLIC], response_model=SignedInOut)
def verify_enrolment(
    body: EnrolmentVerifyIn, request: Request, response: Response, session: SessionDep, identity: IdentityDep
) -> SignedInOut:
    signed_in = do_enrol(
        session=session,
        identity=identity,
        token=body.token,
        ceremony_id=body.ceremony_id,
        credential=body.credential,
        name=body.name,
        now=identity.clock(),
        address=client_address(request),
        user_agent=request.headers.get("user-agent"),
        replaces=session_token(request, identity),
    )
    return _signed_in(response, identity, signed_in)


@router.post("/recovery", dependencies=[PUBLIC], response_model=RecoveryOut)
def recover(body: RecoveryIn, request: Request, session: SessionDep, identity: IdentityDep) -> RecoveryOut:
    """Spend a recovery code for a one-time link to register a new passkey. Opens no session."""
    address = client_address(request)
    identity.throttle.attempt(kind="recovery", login=body.login.strip().lower(), address=address)
    token = do_recover(
        session=session,
        notifier=identity.notifier,
        login=body.login,
        code=body.code,
        now=identity.clock(),
        address=address,
    )
    return RecoveryOut(enrolment_token=token, enrol_url=f"{identity.origin}/enrol#{token}")


def _current_session(request: Request, session: Session, identity: IdentityDep) -> AccountSession:
    return session_of_request(request, session=session, identity=identity, refuse_revoked=True)


@router.post("/step-up/options", dependencies=[requires(Permission.ACCOUNT_SELF_MANAGE)], response_model=CeremonyOut)
def start_step_up(caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep) -> CeremonyOut:
    row = _current_session(request, session, identity)
    started = do_start_step_up(
        session=session, identity=identity, account_id=caller.account_id, session_hash=row.id_hash, now=identity.clock()
    )
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
    rotated = do_step_up(
        session=session,
        identity=identity,
        ceremony_id=body.ceremony_id,
        credential=body.credential,
        account_id=caller.account_id,
        row=row,
        now=identity.clock(),
        address=client_address(request),
    )
    set_session_cookie(response, identity, rotated.token)
    return CsrfOut(csrf_token=rotated.row.csrf_token)


@router.post("/logout", dependencies=[requires(Permission.ACCOUNT_SELF_MANAGE)], status_code=204)
def logout(caller: AnyCaller, request: Request, response: Response, session: SessionDep, identity: IdentityDep) -> None:
    row = _current_session(request, session, identity)
    do_logout(
        session=session, row=row, account_id=caller.account_id, now=identity.clock(), address=client_address(request)
    )
    clear_session_cookie(response, identity)
