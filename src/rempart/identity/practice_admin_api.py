"""A practice admin's routes: inviting the practice's professionals, its API clients and their
keys, and the practice's security events.

Granting access (an invitation, a new client or key) needs a fresh passkey check (step-up);
revoking never does.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from rempart.identity.clients import (
    active_keys,
    clients_of,
    do_add_client_key,
    do_create_client,
    do_revoke_client,
    do_revoke_client_key,
)
from rempart.identity.context import IdentityDep, IdentityServices
from rempart.identity.deps import RECENT_PASSKEY, AnyCaller, client_address, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.events import events_for_operators
from rempart.identity.invitations import do_invite_professional
from rempart.identity.models import ApiClient
from rempart.identity.permissions import Permission, Role
from rempart.identity.principal import Principal
from rempart.identity.schemas import (
    ClientCreateIn,
    ClientKeyIn,
    ClientOut,
    InvitationOut,
    ProfessionalInvitationIn,
    SecurityEventOut,
)
from rempart.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["identity"])


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
    invitation = do_invite_professional(
        session=session,
        practice_id=_practice_of(caller),
        rpps=body.rpps,
        login=body.login,
        practice_admin=body.practice_admin,
        now=identity.clock(),
        invited_by=caller.account_id,
    )
    return InvitationOut.of(invitation, identity.origin)


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
    return [_client_out(session, c, identity) for c in clients_of(session, _practice_of(caller))]


@router.post(
    "/practice/clients",
    dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE), RECENT_PASSKEY],
    response_model=ClientOut,
    status_code=201,
)
def new_client(
    body: ClientCreateIn, caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> ClientOut:
    client = do_create_client(
        session=session,
        practice_id=_practice_of(caller),
        name=body.name,
        public_jwk=body.public_jwk,
        now=identity.clock(),
        expires_at=body.expires_at,
        acting_account_id=caller.account_id,
        address=client_address(request),
    )
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
    client = do_add_client_key(
        session=session,
        practice_id=_practice_of(caller),
        client_id=client_id,
        public_jwk=body.public_jwk,
        now=identity.clock(),
        acting_account_id=caller.account_id,
        address=client_address(request),
    )
    return _client_out(session, client, identity)


@router.delete(
    "/practice/clients/{client_id}/keys/{kid}",
    dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE)],
    response_model=ClientOut,
)
def revoke_client_key(
    *, client_id: uuid.UUID, kid: str, caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> ClientOut:
    client = do_revoke_client_key(
        session=session,
        practice_id=_practice_of(caller),
        client_id=client_id,
        kid=kid,
        now=identity.clock(),
        acting_account_id=caller.account_id,
        address=client_address(request),
    )
    return _client_out(session, client, identity)


@router.post(
    "/practice/clients/{client_id}/revoke",
    dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE)],
    response_model=ClientOut,
)
def revoke_practice_client(
    client_id: uuid.UUID, caller: AnyCaller, request: Request, session: SessionDep, identity: IdentityDep
) -> ClientOut:
    client = do_revoke_client(
        session=session,
        practice_id=_practice_of(caller),
        client_id=client_id,
        now=identity.clock(),
        acting_account_id=caller.account_id,
        address=client_address(request),
    )
    return _client_out(session, client, identity)


@router.get(
    "/practice/security-events",
    dependencies=[requires(Permission.PRACTICE_CLIENT_MANAGE)],
    response_model=list[SecurityEventOut],
)
def practice_security_events(caller: AnyCaller, session: SessionDep) -> list[SecurityEventOut]:
    return [SecurityEventOut.of(e) for e in events_for_operators(session, practice_id=_practice_of(caller))]
