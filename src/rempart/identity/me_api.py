"""An account's own security: its passkeys, sessions, recovery codes and security events."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from rempart.identity.accounts import do_end_all_sessions, do_replace_recovery_codes, roles_of, signed_in_account
from rempart.identity.ceremonies import do_add_passkey, do_start_adding_passkey
from rempart.identity.context import IdentityDep
from rempart.identity.deps import RECENT_PASSKEY, AnyCaller, client_address, requires
from rempart.identity.events import events_of_account
from rempart.identity.models import Account, AccountSession
from rempart.identity.passkeys import do_remove_passkey, passkeys_of
from rempart.identity.permissions import Permission
from rempart.identity.principal import Principal
from rempart.identity.schemas import (
    AccountOut,
    CeremonyOut,
    PasskeyOut,
    PasskeyRegisterIn,
    RecoveryCodesOut,
    RevokedOut,
    SecurityEventOut,
    SessionOut,
)
from rempart.identity.sessions import clear_session_cookie, do_end_session, session_of_request, sessions_of
from rempart.web.deps import SessionDep

router = APIRouter(prefix="/api/v1/me", tags=["identity"])
SELF = requires(Permission.ACCOUNT_SELF_MANAGE)


def _account(caller: Principal, session: Session) -> Account:
    return signed_in_account(session, caller.account_id)


def _current(request: Request, session: Session, identity: IdentityDep) -> AccountSession:
    return session_of_request(request, session=session, identity=identity, refuse_revoked=False)


@router.get("/account", dependencies=[SELF], response_model=AccountOut)
def my_account(caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep) -> AccountOut:
    account = _account(caller, session)
    return AccountOut(
        account_id=account.id,
        login=account.login,
        roles=sorted(r.value for r in roles_of(session, account.id)),
        insurer_id=account.insurer_id,
        practice_id=account.practice_id,
        csrf_token=_current(request, session, identity).csrf_token,
        authenticated_at=caller.authenticated_at,
    )


@router.get("/security-events", dependencies=[SELF], response_model=list[SecurityEventOut])
def my_security_events(caller: AnyCaller, session: SessionDep) -> list[SecurityEventOut]:
    return [SecurityEventOut.of(e) for e in events_of_account(session, _account(caller, session).id)]


# -- passkeys -------------------------------------------------------------------------------------


@router.get("/passkeys", dependencies=[SELF], response_model=list[PasskeyOut])
def my_passkeys(caller: AnyCaller, session: SessionDep) -> list[PasskeyOut]:
    return [
        PasskeyOut(
            id=p.ref,
            name=p.name,
            created_at=p.created_at,
            last_used_at=p.last_used_at,
            backed_up=p.backed_up,
            clone_suspected=p.clone_suspected_at is not None,
        )
        for p in passkeys_of(session, _account(caller, session).id)
    ]


@router.post("/passkeys/options", dependencies=[SELF, RECENT_PASSKEY], response_model=CeremonyOut)
def start_adding_passkey(
    caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> CeremonyOut:
    started = do_start_adding_passkey(
        session=session,
        identity=identity,
        account=_account(caller, session),
        now=identity.clock(),
        session_hash=_current(request, session, identity).id_hash,
    )
    return CeremonyOut(ceremony_id=started.ceremony_id, public_key=started.options)


@router.post("/passkeys", dependencies=[SELF, RECENT_PASSKEY], response_model=PasskeyOut, status_code=201)
def add_passkey(
    body: PasskeyRegisterIn, caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> PasskeyOut:
    passkey = do_add_passkey(
        session=session,
        identity=identity,
        account_id=caller.account_id,
        ceremony_id=body.ceremony_id,
        credential=body.credential,
        name=body.name,
        now=identity.clock(),
        address=client_address(request),
        session_hash=_current(request, session, identity).id_hash,
    )
    return PasskeyOut(
        id=passkey.ref,
        name=passkey.name,
        created_at=passkey.created_at,
        last_used_at=None,
        backed_up=passkey.backed_up,
        clone_suspected=False,
    )


# A passkey's id is a UUID in the path itself, so that ``/passkeys/options`` is never taken for one:
# DELETE there is a 405 naming POST, not a 422 about a malformed id.
@router.delete("/passkeys/{passkey_id:uuid}", dependencies=[SELF, RECENT_PASSKEY], status_code=204)
def delete_passkey(
    passkey_id: uuid.UUID, caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> None:
    do_remove_passkey(
        session=session,
        account_id=_account(caller, session).id,
        ref=passkey_id,
        now=identity.clock(),
        address=client_address(request),
    )


# -- sessions and recovery codes ------------------------------------------------------------------


@router.get("/sessions", dependencies=[SELF], response_model=list[SessionOut])
def my_sessions(caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep) -> list[SessionOut]:
    current = _current(request, session, identity)
    return [
        SessionOut(
            id=row.ref,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            address=row.address,
            user_agent=row.user_agent,
            current=row.id_hash == current.id_hash,
        )
        for row in sessions_of(session, _account(caller, session).id, now=identity.clock())
    ]


@router.delete("/sessions/{session_id}", dependencies=[SELF], status_code=204)
def end_session(
    session_id: uuid.UUID, caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> None:
    do_end_session(
        session=session,
        account_id=_account(caller, session).id,
        ref=session_id,
        now=identity.clock(),
        address=client_address(request),
    )


@router.post("/sessions/revoke-all", dependencies=[SELF], response_model=RevokedOut)
def end_all_sessions(
    caller: AnyCaller, request: Request, response: Response, session: SessionDep, identity: IdentityDep
) -> RevokedOut:
    """Sign out everywhere, this browser included."""
    count = do_end_all_sessions(
        session=session,
        account_id=_account(caller, session).id,
        now=identity.clock(),
        address=client_address(request),
    )
    clear_session_cookie(response, identity)
    return RevokedOut(revoked=count)


@router.post("/recovery-codes", dependencies=[SELF, RECENT_PASSKEY], response_model=RecoveryCodesOut)
def new_recovery_codes(caller: AnyCaller, session: SessionDep, identity: IdentityDep) -> RecoveryCodesOut:
    """Replace every recovery code of the account; the new ones are shown this once."""
    codes = do_replace_recovery_codes(session=session, account_id=_account(caller, session).id, now=identity.clock())
    return RecoveryCodesOut(codes=codes)
