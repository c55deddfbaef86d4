"""An insurer admin's routes for the insurer's API clients: its nightly jobs (a members file, a
payment run) with no person involved, under ``/api/v1/insurers/{insurer_id}/api-clients``.

The same rules as a practice's clients (``rempart.identity.clients``, shared): a client is
registered with its public JWK and the scopes it is granted, keys rotate (add the new, move the job,
revoke the old) and a client is revoked for good. Granting access (a new client or key) needs a
fresh passkey check (step-up); revoking never does. Only a person may manage clients: a client's own
token holds no ``insurer:staff:invite`` and no passkey, so it cannot grant itself anything.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.clients import (
    active_keys,
    clients_of,
    do_add_client_key,
    do_create_client,
    do_revoke_client,
    do_revoke_client_key,
)
from rempart.identity.context import IdentityDep, IdentityServices
from rempart.identity.deps import RECENT_PASSKEY, client_address, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.models import ApiClient
from rempart.identity.permissions import Permission
from rempart.identity.principal import StaffPrincipal
from rempart.identity.schemas import ClientKeyIn, InsurerClientCreateIn, InsurerClientOut
from rempart.web.deps import SessionDep

router = APIRouter(prefix="/api/v1/insurers/{insurer_id}/api-clients", tags=["identity"])

_MANAGE = requires(Permission.INSURER_CLIENT_MANAGE)  # the insurer admin's


def _admin(caller: StaffPrincipal) -> uuid.UUID:
    """The acting person's account. A client never manages clients, whatever it was granted."""
    if caller.is_client:
        raise PermissionDenied("only a person may manage the insurer's API clients")
    return caller.account_id


def _client_out(session: Session, client: ApiClient, identity: IdentityServices) -> InsurerClientOut:
    return InsurerClientOut(
        client_id=client.id,
        name=client.name,
        status=client.status.value,
        created_at=client.created_at,
        expires_at=client.expires_at,
        keys=[k.kid for k in active_keys(session, client.id)],
        token_url=identity.token_url,
        scopes=client.scope_list,
    )


@router.get("", dependencies=[_MANAGE], response_model=list[InsurerClientOut])
def list_insurer_clients(
    insurer_id: uuid.UUID, caller: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> list[InsurerClientOut]:
    _admin(caller)
    return [_client_out(session, c, identity) for c in clients_of(session, insurer_id=caller.insurer_id)]


@router.post("", dependencies=[_MANAGE, RECENT_PASSKEY], response_model=InsurerClientOut, status_code=201)
def register_insurer_client(
    *,
    insurer_id: uuid.UUID,
    body: InsurerClientCreateIn,
    caller: GuardedStaffCaller,
    request: Request,
    session: SessionDep,
    identity: IdentityDep,
) -> InsurerClientOut:
    """Register a job's client with its public JWK (the private key never leaves the job's host)
    and its scopes: ``members:import``, ``claims:review``, ``payment-runs``, ``access-log:read``."""
    client = do_create_client(
        session=session,
        insurer_id=caller.insurer_id,
        scopes=frozenset(body.scopes),
        name=body.name,
        public_jwk=body.public_jwk,
        now=identity.clock(),
        expires_at=body.expires_at,
        acting_account_id=_admin(caller),
        address=client_address(request),
    )
    return _client_out(session, client, identity)


@router.post(
    "/{client_id}/keys", dependencies=[_MANAGE, RECENT_PASSKEY], response_model=InsurerClientOut, status_code=201
)
def add_insurer_client_key(
    *,
    insurer_id: uuid.UUID,
    client_id: uuid.UUID,
    body: ClientKeyIn,
    caller: GuardedStaffCaller,
    request: Request,
    session: SessionDep,
    identity: IdentityDep,
) -> InsurerClientOut:
    """Rotation, first step: the new key works alongside the old one until that one is revoked."""
    client = do_add_client_key(
        session=session,
        insurer_id=caller.insurer_id,
        client_id=client_id,
        public_jwk=body.public_jwk,
        now=identity.clock(),
        acting_account_id=_admin(caller),
        address=client_address(request),
    )
    return _client_out(session, client, identity)


@router.delete("/{client_id}/keys/{kid}", dependencies=[_MANAGE], response_model=InsurerClientOut)
def revoke_insurer_client_key(
    *,
    insurer_id: uuid.UUID,
    client_id: uuid.UUID,
    kid: str,
    caller: GuardedStaffCaller,
    request: Request,
    session: SessionDep,
    identity: IdentityDep,
) -> InsurerClientOut:
    """Rotation, last step: the old key signs nothing more, and the client's tokens die with it."""
    client = do_revoke_client_key(
        session=session,
        insurer_id=caller.insurer_id,
        client_id=client_id,
        kid=kid,
        now=identity.clock(),
        acting_account_id=_admin(caller),
        address=client_address(request),
    )
    return _client_out(session, client, identity)


@router.post("/{client_id}/revoke", dependencies=[_MANAGE], response_model=InsurerClientOut)
def revoke_insurer_client(
    *,
    insurer_id: uuid.UUID,
    client_id: uuid.UUID,
    caller: GuardedStaffCaller,
    request: Request,
    session: SessionDep,
    identity: IdentityDep,
) -> InsurerClientOut:
    client = do_revoke_client(
        session=session,
        insurer_id=caller.insurer_id,
        client_id=client_id,
        now=identity.clock(),
        acting_account_id=_admin(caller),
        address=client_address(request),
    )
    return _client_out(session, client, identity)
