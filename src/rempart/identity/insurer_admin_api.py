"""An insurer admin's routes: inviting the insurer's staff and beneficiaries, listing its staff.

Granting access (an invitation) needs a fresh passkey check (step-up).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.accounts import roles_of, staff_of
from rempart.identity.context import IdentityDep
from rempart.identity.deps import RECENT_PASSKEY, requires
from rempart.identity.invitations import do_invite_beneficiary, do_invite_insurer_staff
from rempart.identity.permissions import Permission
from rempart.identity.schemas import BeneficiaryInvitationIn, InvitationOut, StaffInvitationIn, StaffOut
from rempart.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.post(
    "/insurers/{insurer_id}/staff-invitations",
    dependencies=[requires(Permission.INSURER_STAFF_INVITE), RECENT_PASSKEY],
    response_model=InvitationOut,
    status_code=201,
)
def invite_staff(
    insurer_id: uuid.UUID,
    body: StaffInvitationIn,
    caller: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> InvitationOut:
    invitation = do_invite_insurer_staff(
        session=session,
        insurer_id=caller.insurer_id,
        login=body.login,
        roles=body.roles,
        now=identity.clock(),
        invited_by=caller.account_id,
    )
    return InvitationOut.of(invitation, identity.origin)


@router.get(
    "/insurers/{insurer_id}/staff",
    dependencies=[requires(Permission.INSURER_STAFF_INVITE)],
    response_model=list[StaffOut],
)
def list_staff(insurer_id: uuid.UUID, caller: GuardedStaffCaller, session: SessionDep) -> list[StaffOut]:
    return [
        StaffOut(
            account_id=a.id,
            login=a.login,
            status=a.status.value,
            roles=sorted(r.value for r in roles_of(session, a.id)),
        )
        for a in staff_of(session, caller.insurer_id)
    ]


@router.post(
    "/insurers/{insurer_id}/beneficiary-invitations",
    dependencies=[requires(Permission.INSURER_BENEFICIARY_INVITE), RECENT_PASSKEY],
    response_model=InvitationOut,
    status_code=201,
)
def invite_beneficiary(
    insurer_id: uuid.UUID,
    body: BeneficiaryInvitationIn,
    caller: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> InvitationOut:
    """An account for one of the insurer's beneficiaries (their card, rights and access log)."""
    invitation = do_invite_beneficiary(
        session=session,
        insurer_id=caller.insurer_id,
        beneficiary_id=body.beneficiary_id,
        login=body.login,
        now=identity.clock(),
        invited_by=caller.account_id,
    )
    return InvitationOut.of(invitation, identity.origin)
