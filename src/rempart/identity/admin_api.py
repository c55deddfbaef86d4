"""Who may invite whom, practice clients and keys, and the security operators' view.

- the platform invites insurer admins and security operators;
- an insurer admin invites the insurer's staff;
- a practice admin invites the practice's professionals and manages its API clients and keys.
Granting access (an invitation, a new client or key) needs a fresh passkey check (step-up);
revoking never does.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.detection.deps import GuardedStaffCaller
from rempart.errors import NotFound
from rempart.identity.accounts import invite_account, professional_id_by_rpps, roles_of, suspend_account
from rempart.identity.clients import access_client, active_keys, add_client_key, create_client, revoke_client
from rempart.identity.clients import revoke_client_key as revoke_key
from rempart.identity.context import IdentityDep, IdentityServices
from rempart.identity.deps import RECENT_PASSKEY, AnyCaller, client_address, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.events import events_for_operators, record_event
from rempart.identity.models import Account, ApiClient, SecurityEventKind
from rempart.identity.permissions import INSURER_ROLES, Permission, Role
from rempart.identity.principal import Principal
from rempart.identity.schemas import (
    BeneficiaryInvitationIn,
    ClientCreateIn,
    ClientKeyIn,
    ClientOut,
    InvitationOut,
    PlatformInvitationIn,
    PracticeCreatedOut,
    PracticeCreateIn,
    ProfessionalInvitationIn,
    SecurityEventOut,
    StaffInvitationIn,
    StaffOut,
    SuspendIn,
)
from rempart.identity.tenant_access import access_owned
from rempart.members.models import Beneficiary
from rempart.professionals.service import (
    attach_professional,
    create_practice,
    is_valid_rpps,
    register_professional,
)
from rempart.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["identity"])


def _invited(invitation_account_id: uuid.UUID, token_url: str) -> InvitationOut:
    return InvitationOut(account_id=invitation_account_id, enrol_url=token_url)


# -- insurer staff ----------------------------------------------------------------------------------


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
    if not set(body.roles) <= INSURER_ROLES:
        raise PermissionDenied("an insurer admin invites insurer staff only")
    invitation = invite_account(
        session=session,
        login=body.login,
        roles=body.roles,
        now=identity.clock(),
        invited_by=caller.account_id,
        insurer_id=caller.insurer_id,
    )
    session.commit()
    return _invited(invitation.account.id, invitation.url(identity.origin))


@router.get(
    "/insurers/{insurer_id}/staff",
    dependencies=[requires(Permission.INSURER_STAFF_INVITE)],
    response_model=list[StaffOut],
)
def list_staff(insurer_id: uuid.UUID, caller: GuardedStaffCaller, session: SessionDep) -> list[StaffOut]:
    accounts = session.scalars(
        select(Account)
        .where(Account.insurer_id == caller.insurer_id, Account.beneficiary_id.is_(None))
        .order_by(Account.login)
    ).all()
    return [
        StaffOut(
            account_id=a.id,
            login=a.login,
            status=a.status.value,
            roles=sorted(r.value for r in roles_of(session, a.id)),
        )
        for a in accounts
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
    beneficiary = access_owned(
        session, Beneficiary, insurer_id=caller.insurer_id, key=body.beneficiary_id, what="beneficiary"
    )
    invitation = invite_account(
        session=session,
        login=body.login,
        roles={Role.BENEFICIARY},
        now=identity.clock(),
        invited_by=caller.account_id,
        insurer_id=caller.insurer_id,
        beneficiary_id=beneficiary.id,
    )
    session.commit()
    return _invited(invitation.account.id, invitation.url(identity.origin))


# -- practices ----------------------------------------------------------------------------------


def _practice_of(caller: Principal) -> uuid.UUID:
    if caller.practice_id is None or Role.PRACTICE_ADMIN not in caller.roles:
        raise PermissionDenied("only a practice admin may do this")
    return caller.practice_id


@router.post(
    "/practice/invitations",
    dependencies=[requires(Permission.PRACTICE_PROFESSIONAL_INVITE), RECENT_PASSKEY],
    response_model=InvitationOut,
    status_code=201,
)
def invite_professional(
    body: ProfessionalInvitationIn, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> InvitationOut:
    practice_id = _practice_of(caller)
    if not is_valid_rpps(body.rpps):
        raise NotFound("no professional with this RPPS in this practice")
    roles = {Role.PROFESSIONAL} | ({Role.PRACTICE_ADMIN} if body.practice_admin else set())
    invitation = invite_account(
        session=session,
        login=body.login,
        roles=roles,
        now=identity.clock(),
        invited_by=caller.account_id,
        practice_id=practice_id,
        professional_id=professional_id_by_rpps(session, body.rpps),
    )
    session.commit()
    return _invited(invitation.account.id, invitation.url(identity.origin))


def _client_out(session: Session, client: ApiClient, identity: IdentityServices) -> ClientOut:
    return ClientOut(
        client_id=client.id,
        name=client.name,
        status=client.status.value,
        created_at=client.created_at,
        expires_at=client.expires_at,
        keys=[k.kid for k in active_keys(session, client.id)],
        token_url=identity.token_url,
    )


@router.get(
    "/practice/clients", dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE)], response_model=list[ClientOut]
)
def list_clients(caller: AnyCaller, session: SessionDep, identity: IdentityDep) -> list[ClientOut]:
    practice_id = _practice_of(caller)
    clients = session.scalars(
        select(ApiClient).where(ApiClient.practice_id == practice_id).order_by(ApiClient.created_at)
    ).all()
    return [_client_out(session, c, identity) for c in clients]


@router.post(
    "/practice/clients",
    dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE), RECENT_PASSKEY],
    response_model=ClientOut,
    status_code=201,
)
def new_client(
    body: ClientCreateIn, caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> ClientOut:
    practice_id = _practice_of(caller)
    now = identity.clock()
    client, key = create_client(
        session=session,
        practice_id=practice_id,
        name=body.name,
        public_jwk=body.public_jwk,
        now=now,
        expires_at=body.expires_at,
    )
    record_event(
        session=session,
        kind=SecurityEventKind.CLIENT_CREATED,
        at=now,
        account_id=caller.account_id,
        practice_id=practice_id,
        client_id=client.id,
        address=client_address(request),
        kid=key.kid,
    )
    session.commit()
    return _client_out(session, client, identity)


@router.post(
    "/practice/clients/{client_id}/keys",
    dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE), RECENT_PASSKEY],
    response_model=ClientOut,
    status_code=201,
)
def new_client_key(
    *,
    client_id: uuid.UUID,
    body: ClientKeyIn,
    caller: AnyCaller,
    request: Request,
    session: SessionDep,
    identity: IdentityDep,
) -> ClientOut:
    practice_id = _practice_of(caller)
    client = access_client(session, practice_id=practice_id, client_id=client_id)
    now = identity.clock()
    key = add_client_key(session=session, client=client, public_jwk=body.public_jwk, now=now)
    record_event(
        session=session,
        kind=SecurityEventKind.CLIENT_KEY_ADDED,
        at=now,
        account_id=caller.account_id,
        practice_id=practice_id,
        client_id=client.id,
        address=client_address(request),
        kid=key.kid,
    )
    session.commit()
    return _client_out(session, client, identity)


@router.delete(
    "/practice/clients/{client_id}/keys/{kid}",
    dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE)],
    response_model=ClientOut,
)
def revoke_client_key(
    *, client_id: uuid.UUID, kid: str, caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> ClientOut:
    practice_id = _practice_of(caller)
    client = access_client(session, practice_id=practice_id, client_id=client_id)
    now = identity.clock()
    revoke_key(session=session, client=client, kid=kid, now=now)
    record_event(
        session=session,
        kind=SecurityEventKind.CLIENT_KEY_REVOKED,
        at=now,
        account_id=caller.account_id,
        practice_id=practice_id,
        client_id=client.id,
        address=client_address(request),
        kid=kid[:64],
    )
    session.commit()
    return _client_out(session, client, identity)


@router.post(
    "/practice/clients/{client_id}/revoke",
    dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE)],
    response_model=ClientOut,
)
def revoke_practice_client(
    client_id: uuid.UUID, caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> ClientOut:
    practice_id = _practice_of(caller)
    client = access_client(session, practice_id=practice_id, client_id=client_id)
    now = identity.clock()
    revoke_client(session=session, client=client, now=now)
    record_event(
        session=session,
        kind=SecurityEventKind.CLIENT_REVOKED,
        at=now,
        account_id=caller.account_id,
        practice_id=practice_id,
        client_id=client.id,
        address=client_address(request),
    )
    session.commit()
    return _client_out(session, client, identity)


@router.get(
    "/practice/security-events",
    dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE)],
    response_model=list[SecurityEventOut],
)
def practice_security_events(caller: AnyCaller, session: SessionDep) -> list[SecurityEventOut]:
    return [SecurityEventOut.of(e) for e in events_for_operators(session, practice_id=_practice_of(caller))]


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
    invitation = invite_account(
        session=session,
        login=body.login,
        roles={Role.INSURER_ADMIN},
        now=identity.clock(),
        invited_by=caller.account_id,
        insurer_id=insurer_id,
    )
    session.commit()
    return _invited(invitation.account.id, invitation.url(identity.origin))


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
    now = identity.clock()
    practice = create_practice(
        session=session, name=body.name, profession=body.profession, finess=body.finess, am_number=body.am_number
    )
    professional = register_professional(session=session, rpps=body.admin_rpps, profession=body.profession)
    attach_professional(session=session, practice_id=practice.id, professional_id=professional.id, now=now)
    invitation = invite_account(
        session=session,
        login=body.admin_login,
        roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
        now=now,
        invited_by=caller.account_id,
        practice_id=practice.id,
        professional_id=professional.id,
    )
    session.commit()
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
    invitation = invite_account(
        session=session,
        login=body.login,
        roles={Role.SECURITY_OPERATOR},
        now=identity.clock(),
        invited_by=caller.account_id,
    )
    session.commit()
    return _invited(invitation.account.id, invitation.url(identity.origin))


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
    suspend_account(session=session, account_id=account_id, now=identity.clock(), reason=body.reason)
    session.commit()
