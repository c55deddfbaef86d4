"""API clients and their keys: creation, rotation and revocation.

A client belongs to one owner: a practice (its billing software, acting for its professionals) or
an insurer (its nightly jobs, with the permissions of their scopes). The same rules hold for both,
through the same functions: the owner is named by ``practice_id=`` or ``insurer_id=``, exactly one.

An admin's changes go through the ``do_*`` functions: each writes its security event in the same
transaction and commits.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.identity.events import record_event
from rempart.identity.jose import import_public_jwk, public_json
from rempart.identity.models import (
    AccessToken,
    Account,
    AccountRole,
    AccountStatus,
    ApiClient,
    ApiClientKey,
    ClientKeyStatus,
    ClientStatus,
    Enrolment,
    EnrolmentPurpose,
    SecurityEventKind,
)
from rempart.identity.permissions import ClientScope, Role
from rempart.insurers.models import Insurer
from rempart.professionals.models import Practice, PracticeMembership, Profession, Professional, ProfessionalStatus

MAX_ACTIVE_KEYS = 3  # the current key, the next one during a rotation, and one spare
# What a kid may be: an RFC 7638 thumbprint, base64url without padding (43 characters for SHA-256).
KID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _one_owner(practice_id: uuid.UUID | None, insurer_id: uuid.UUID | None) -> None:
    if (practice_id is None) == (insurer_id is None):
        raise TypeError("name exactly one owner: practice_id or insurer_id")


def access_client(
    session: Session,
    *,
    client_id: uuid.UUID,
    practice_id: uuid.UUID | None = None,
    insurer_id: uuid.UUID | None = None,
) -> ApiClient:
    """The owner's client; another owner's client (a practice's or an insurer's) and a missing one
    answer the same."""
    _one_owner(practice_id, insurer_id)
    client = session.get(ApiClient, client_id)
    if client is None or client.practice_id != practice_id or client.insurer_id != insurer_id:
        raise NotFound("no such client")
    return client


def create_client(
    *,
    session: Session,
    name: str,
    public_jwk: dict[str, Any],
    now: datetime,
    expires_at: datetime | None = None,
    practice_id: uuid.UUID | None = None,
    insurer_id: uuid.UUID | None = None,
    scopes: frozenset[ClientScope] = frozenset(),
) -> tuple[ApiClient, ApiClientKey]:
    """A practice's client (no scopes: it acts for the practice's professionals) or an insurer's
    (at least one scope, and nothing beyond them)."""
    _one_owner(practice_id, insurer_id)
    if practice_id is not None:
        if session.get(Practice, practice_id) is None:
            raise NotFound("no such practice")
        if scopes:
            raise ValidationFailed("a practice's client takes no scopes: it acts for the practice's professionals")
    else:
        if session.get(Insurer, insurer_id) is None:
            raise NotFound("no such insurer")
        if not scopes:
            raise ValidationFailed("an insurer's client needs at least one scope")
    if not name.strip() or len(name) > 100:
        raise ValidationFailed("a client needs a name of at most 100 characters")
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed("a client cannot expire in the past")
    client = ApiClient(
        id=uuid.uuid4(),
        practice_id=practice_id,
        insurer_id=insurer_id,
        scopes=" ".join(sorted(s.value for s in scopes)),
        name=name.strip(),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(client)
    session.flush()
    key = add_client_key(session=session, client=client, public_jwk=public_jwk, now=now)
    return client, key


def add_client_key(*, session: Session, client: ApiClient, public_jwk: dict[str, Any], now: datetime) -> ApiClientKey:
    """Register one more public key (rotation: add the new key, move the software, revoke the old)."""
    if client.status is ClientStatus.REVOKED:
        raise Conflict("this client is revoked")
    key = import_public_jwk(public_jwk)
    kid = key.thumbprint()
    if session.scalar(select(ApiClientKey.kid).where(ApiClientKey.kid == kid)) is not None:
        raise Conflict("this key is already registered")
    if len(active_keys(session, client.id)) >= MAX_ACTIVE_KEYS:
        raise Conflict(f"a client has at most {MAX_ACTIVE_KEYS} active keys: revoke one first")
    row = ApiClientKey(client_id=client.id, kid=kid, public_jwk=public_json(key), created_at=now)
    session.add(row)
    session.flush()
    return row


def active_keys(session: Session, client_id: uuid.UUID) -> Sequence[ApiClientKey]:
    return session.scalars(
        select(ApiClientKey)
        .where(ApiClientKey.client_id == client_id, ApiClientKey.status == ClientKeyStatus.ACTIVE)
        .order_by(ApiClientKey.created_at)
    ).all()


def revoke_client_key(*, session: Session, client: ApiClient, kid: str, now: datetime) -> ApiClientKey:
    # A kid is a key's RFC 7638 thumbprint; anything else (a NUL, which PostgreSQL cannot even
    # compare) names no key.
    key = session.get(ApiClientKey, (client.id, kid)) if KID.fullmatch(kid) else None
    if key is None:
        raise NotFound("no such key")
    if key.status is ClientKeyStatus.ACTIVE:
        key.status, key.revoked_at = ClientKeyStatus.REVOKED, now
        # Tokens were issued on an assertion signed by some key of this client; a key revoked after
        # a suspected leak must not leave those tokens alive.
        session.execute(delete(AccessToken).where(AccessToken.client_id == client.id))
    return key


def revoke_client(*, session: Session, client: ApiClient, now: datetime) -> ApiClient:
    if client.status is not ClientStatus.REVOKED:
        client.status, client.revoked_at = ClientStatus.REVOKED, now
    return client


def clients_of(
    session: Session, practice_id: uuid.UUID | None = None, *, insurer_id: uuid.UUID | None = None
) -> Sequence[ApiClient]:
    """The owner's clients, oldest first."""
    _one_owner(practice_id, insurer_id)
    owner = ApiClient.practice_id == practice_id if practice_id is not None else ApiClient.insurer_id == insurer_id
    return session.scalars(select(ApiClient).where(owner).order_by(ApiClient.created_at)).all()


def keys_of(session: Session, client_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[ApiClientKey]]:
    """Every key of these clients, revoked ones included, oldest first (the practice admin's list)."""
    found: dict[uuid.UUID, list[ApiClientKey]] = {client_id: [] for client_id in client_ids}
    if client_ids:
        for key in session.scalars(
            select(ApiClientKey)
            .where(ApiClientKey.client_id.in_(list(client_ids)))
            .order_by(ApiClientKey.created_at, ApiClientKey.kid)
        ):
            found[key.client_id].append(key)
    return found


# -- the practice admin's reads: who acts for the practice, and who was invited ---------------------
# (Here rather than in ``accounts``: the practice admin's pages read a practice's people and its
# software together, and only through these.)


@dataclass(frozen=True)
class PracticeProfessional:
    """A professional acting for the practice now."""

    professional_id: uuid.UUID
    rpps: str
    profession: Profession
    status: ProfessionalStatus
    since: datetime


@dataclass(frozen=True)
class Colleague:
    """An account of the practice. ``invitation_expires_at``: while the account waits for its first
    passkey, when its latest enrolment link stops working."""

    account_id: uuid.UUID
    login: str
    status: AccountStatus
    roles: frozenset[Role]
    rpps: str | None
    created_at: datetime
    invitation_expires_at: datetime | None

    @property
    def pending(self) -> bool:
        return self.status is AccountStatus.INVITED


def practice_roster(session: Session, practice_id: uuid.UUID) -> tuple[list[PracticeProfessional], list[Colleague]]:
    """The practice's professionals (by RPPS) and its accounts (by login)."""
    professionals = [
        PracticeProfessional(
            professional_id=p.id, rpps=p.rpps, profession=p.profession, status=p.status, since=started_at
        )
        for p, started_at in session.execute(
            select(Professional, PracticeMembership.started_at)
            .join(PracticeMembership, PracticeMembership.professional_id == Professional.id)
            .where(PracticeMembership.practice_id == practice_id, PracticeMembership.ended_at.is_(None))
            .order_by(Professional.rpps)
        )
    ]
    accounts = session.scalars(select(Account).where(Account.practice_id == practice_id).order_by(Account.login)).all()
    ids = [a.id for a in accounts]
    roles: dict[uuid.UUID, set[Role]] = {i: set() for i in ids}
    links: dict[uuid.UUID, datetime] = {}
    rpps: dict[uuid.UUID, str] = {}
    if ids:
        for account_id, role in session.execute(
            select(AccountRole.account_id, AccountRole.role).where(AccountRole.account_id.in_(ids))
        ):
            roles[account_id].add(role)
        for account_id, expires_at in session.execute(
            select(Enrolment.account_id, func.max(Enrolment.expires_at))
            .where(
                Enrolment.account_id.in_(ids),
                Enrolment.purpose == EnrolmentPurpose.INVITATION,
                Enrolment.used_at.is_(None),
            )
            .group_by(Enrolment.account_id)
        ):
            links[account_id] = expires_at
        wanted = {a.professional_id for a in accounts if a.professional_id is not None}
        if wanted:
            found = session.execute(select(Professional.id, Professional.rpps).where(Professional.id.in_(wanted)))
            rpps = dict(found.all())
    colleagues = [
        Colleague(
            account_id=a.id,
            login=a.login,
            status=a.status,
            roles=frozenset(roles[a.id]),
            rpps=rpps.get(a.professional_id) if a.professional_id else None,
            created_at=a.created_at,
            invitation_expires_at=links.get(a.id) if a.status is AccountStatus.INVITED else None,
        )
        for a in accounts
    ]
    return professionals, colleagues


# -- a practice admin's changes, each with its security event --------------------------------------


def _commit_with_event(
    session: Session,
    kind: SecurityEventKind,
    client: ApiClient,
    *,
    now: datetime,
    account_id: uuid.UUID | None,
    address: str | None,
    **detail: str,
) -> None:
    """The admin's change to a client, its security event, one commit. (Security events name a
    practice in a column; an insurer's client is named by its ``client_id``, and its insurer in
    the detail.)"""
    if client.insurer_id is not None:
        detail = {**detail, "insurer_id": str(client.insurer_id)}
    record_event(
        session=session,
        kind=kind,
        at=now,
        account_id=account_id,
        practice_id=client.practice_id,
        client_id=client.id,
        address=address,
        **detail,
    )
    session.commit()


def do_create_client(
    *,
    session: Session,
    name: str,
    public_jwk: dict[str, Any],
    now: datetime,
    expires_at: datetime | None,
    acting_account_id: uuid.UUID | None,
    address: str | None,
    practice_id: uuid.UUID | None = None,
    insurer_id: uuid.UUID | None = None,
    scopes: frozenset[ClientScope] = frozenset(),
) -> ApiClient:
    client, key = create_client(
        session=session,
        practice_id=practice_id,
        insurer_id=insurer_id,
        scopes=scopes,
        name=name,
        public_jwk=public_jwk,
        now=now,
        expires_at=expires_at,
    )
    _commit_with_event(
        session,
        SecurityEventKind.CLIENT_CREATED,
        client,
        now=now,
        account_id=acting_account_id,
        address=address,
        kid=key.kid,
        **({"scopes": client.scopes} if client.scopes else {}),
    )
    return client


def do_add_client_key(
    *,
    session: Session,
    client_id: uuid.UUID,
    practice_id: uuid.UUID | None = None,
    insurer_id: uuid.UUID | None = None,
    public_jwk: dict[str, Any],
    now: datetime,
    acting_account_id: uuid.UUID | None,
    address: str | None,
) -> ApiClient:
    client = access_client(session, practice_id=practice_id, insurer_id=insurer_id, client_id=client_id)
    key = add_client_key(session=session, client=client, public_jwk=public_jwk, now=now)
    _commit_with_event(
        session,
        SecurityEventKind.CLIENT_KEY_ADDED,
        client,
        now=now,
        account_id=acting_account_id,
        address=address,
        kid=key.kid,
    )
    return client


def do_revoke_client_key(
    *,
    session: Session,
    client_id: uuid.UUID,
    practice_id: uuid.UUID | None = None,
    insurer_id: uuid.UUID | None = None,
    kid: str,
    now: datetime,
    acting_account_id: uuid.UUID | None,
    address: str | None,
) -> ApiClient:
    client = access_client(session, practice_id=practice_id, insurer_id=insurer_id, client_id=client_id)
    revoke_client_key(session=session, client=client, kid=kid, now=now)
    _commit_with_event(
        session,
        SecurityEventKind.CLIENT_KEY_REVOKED,
        client,
        now=now,
        account_id=acting_account_id,
        address=address,
        kid=kid[:64],
    )
    return client


def do_revoke_client(
    *,
    session: Session,
    client_id: uuid.UUID,
    practice_id: uuid.UUID | None = None,
    insurer_id: uuid.UUID | None = None,
    now: datetime,
    acting_account_id: uuid.UUID | None,
    address: str | None,
) -> ApiClient:
    client = access_client(session, practice_id=practice_id, insurer_id=insurer_id, client_id=client_id)
    revoke_client(session=session, client=client, now=now)
    _commit_with_event(
        session, SecurityEventKind.CLIENT_REVOKED, client, now=now, account_id=acting_account_id, address=address
    )
    return client
