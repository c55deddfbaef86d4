"""The platform staff's routes: the platform admin invites insurer admins and security operators
and onboards practices; security operators read security events and contain accounts.

Granting access (an invitation) needs a fresh passkey check (step-up); containment never does.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from rempart.identity.accounts import do_suspend_account
from rempart.identity.context import IdentityDep
from rempart.identity.deps import RECENT_PASSKEY, AnyCaller, requires
from rempart.identity.events import events_for_operators
from rempart.identity.invitations import do_invite_insurer_admin, do_invite_security_operator, do_onboard_practice
from rempart.identity.models import SecurityEventKind
from rempart.identity.permissions import Permission
from rempart.identity.schemas import (
    InvitationOut,
    PlatformInvitationIn,
    PracticeCreatedOut,
    PracticeCreateIn,
    SecurityEventOut,
    SuspendIn,
)
from rempart.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["identity"])


# -- platform -------------------------------------------------------------------------------------


@router.post(
    "/platform/insurers/{insurer_id}/admin-invitations",
    dependencies=[requires(Permission.PLATFORM_INSURER_ADMIN_INVITE), RECENT_PASSKEY],
    response_model=InvitationOut,
    status_code=201,
)
def invite_insurer_admin(
    insurer_id: uuid.UUID, body: PlatformInvitationIn, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> InvitationOut:
    invitation = do_invite_insurer_admin(
        session=session, insurer_id=insurer_id, login=body.login, now=identity.clock(), invited_by=caller.account_id
    )
    return InvitationOut.of(invitation, identity.origin)


@router.post(
    "/platform/practices",
    dependencies=[requires(Permission.PLATFORM_PRACTICE_CREATE), RECENT_PASSKEY],
    response_model=PracticeCreatedOut,
    status_code=201,
)
def onboard_practice(
    body: PracticeCreateIn, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> PracticeCreatedOut:
    """A new practice, its first professional, and that professional's practice-admin invitation."""
    practice, invitation = do_onboard_practice(
        session=session,
        name=body.name,
        profession=body.profession,
        finess=body.finess,
        am_number=body.am_number,
        admin_rpps=body.admin_rpps,
        admin_login=body.admin_login,
        now=identity.clock(),
        invited_by=caller.account_id,
    )
    return PracticeCreatedOut(
        practice_id=practice.id, admin_account_id=invitation.account.id, enrol_url=invitation.url(identity.origin)
    )


@router.post(
    "/platform/security-operator-invitations",
    dependencies=[requires(Permission.PLATFORM_SECURITY_OPERATOR_INVITE), RECENT_PASSKEY],
    response_model=InvitationOut,
    status_code=201,
)
def invite_security_operator(
    body: PlatformInvitationIn, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> InvitationOut:
    invitation = do_invite_security_operator(
        session=session, login=body.login, now=identity.clock(), invited_by=caller.account_id
    )
    return InvitationOut.of(invitation, identity.origin)


# -- security console ----------------------------------------------------------------------------


@router.get(
    "/security/events", dependencies=[requires(Permission.SECURITY_EVENT_READ)], response_model=list[SecurityEventOut]
)
def security_events(
    caller: AnyCaller,
    session: SessionDep,
    account_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    kind: SecurityEventKind | None = None,
) -> list[SecurityEventOut]:
    return [
        SecurityEventOut.of(e)
        for e in events_for_operators(session, account_id=account_id, practice_id=practice_id, kind=kind)
    ]


@router.post(
    "/security/accounts/{account_id}/suspend",
    dependencies=[requires(Permission.SECURITY_ACCOUNT_CONTAIN)],
    status_code=204,
)
def contain_account(
    account_id: uuid.UUID, body: SuspendIn, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> None:
    """Containment: the account can no longer log in and all its sessions end now."""
    do_suspend_account(session=session, account_id=account_id, now=identity.clock(), reason=body.reason)
