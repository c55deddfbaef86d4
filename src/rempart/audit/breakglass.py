"""Break-glass: a platform operator's access to one beneficiary's identity, in clear.

The platform's operators see no member's identity in the normal course of things (DESIGN.md). When
an incident or a support case needs it, one operator asks (reason, ticket, duration of at most four
hours), a second operator approves, and only then may the first open the record, until the grant
expires or is revoked. Each opening is an access event (``break_glass_view``) that names the grant,
so the beneficiary and their insurer both see it, with the reason and the two operators.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.audit.disclosures import Operation
from rempart.audit.models import ActorKind, BreakGlassGrant, BreakGlassStatus, Channel, Outcome
from rempart.audit.service import Actor, record_access
from rempart.errors import Conflict, Forbidden, NotFound, ValidationFailed
from rempart.logs import get_logger
from rempart.members.models import Beneficiary, Contract
from rempart.pagination import Cursor, Page, keyset_page
from rempart.protection.service import KeyService
from rempart.tenancy import bind_tenant

log = get_logger("rempart.audit.breakglass")

MAX_MINUTES = 240


class BreakGlassRefused(Forbidden):
    slug = "break-glass-refused"
    title = "Break-glass access refused"


def _grant(session: Session, grant_id: uuid.UUID) -> BreakGlassGrant:
    grant = session.get(BreakGlassGrant, grant_id, with_for_update=True)
    if grant is None:
        raise NotFound("no such break-glass grant")
    return grant


def request_break_glass(
    session: Session,
    *,
    operator_id: uuid.UUID,
    insurer_id: uuid.UUID,
    beneficiary_id: uuid.UUID,
    reason: str,
    ticket: str,
    minutes: int,
    now: datetime,
) -> BreakGlassGrant:
    reason, ticket = reason.strip(), ticket.strip()
    if not 10 <= len(reason) <= 500:
        raise ValidationFailed("give a reason of 10 to 500 characters: the insurer and the person will read it")
    if not 1 <= len(ticket) <= 64:
        raise ValidationFailed("name the incident or support ticket (1 to 64 characters)")
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValidationFailed(f"a break-glass grant lasts 1 to {MAX_MINUTES} minutes")
    bind_tenant(session, insurer_id)
    exists = session.scalar(
        select(Beneficiary.id).where(Beneficiary.insurer_id == insurer_id, Beneficiary.id == beneficiary_id)
    )
    if exists is None:
        raise NotFound("no such beneficiary")
    grant = BreakGlassGrant(
        id=uuid.uuid4(),
        insurer_id=insurer_id,
        beneficiary_id=beneficiary_id,
        requested_by=operator_id,
        reason=reason,
        ticket=ticket,
        status=BreakGlassStatus.REQUESTED,
        requested_at=now,
        duration_minutes=minutes,
    )
    session.add(grant)
    session.flush()
    return grant


def decide_break_glass(
    session: Session, *, grant_id: uuid.UUID, operator_id: uuid.UUID, approve: bool, now: datetime
) -> BreakGlassGrant:
    """A second operator approves or refuses; the time limit starts at approval."""
    grant = _grant(session, grant_id)
    if grant.requested_by == operator_id:
        raise BreakGlassRefused("a second operator must decide on a break-glass request")
    if grant.status is not BreakGlassStatus.REQUESTED:
        raise Conflict("this request was already decided")
    grant.decided_by, grant.decided_at = operator_id, now
    if approve:
        grant.status = BreakGlassStatus.APPROVED
        grant.expires_at = now + timedelta(minutes=grant.duration_minutes)
    else:
        grant.status = BreakGlassStatus.REFUSED
    session.flush()
    return grant


def revoke_break_glass(session: Session, *, grant_id: uuid.UUID, operator_id: uuid.UUID, now: datetime) -> None:
    """Either operator may end a grant early."""
    grant = _grant(session, grant_id)
    if operator_id not in {grant.requested_by, grant.decided_by}:
        raise BreakGlassRefused("only the operators of this grant may revoke it")
    if grant.status is BreakGlassStatus.APPROVED:
        grant.status, grant.revoked_at = BreakGlassStatus.REVOKED, now
        session.flush()


def usable(grant: BreakGlassGrant, now: datetime) -> bool:
    return grant.status is BreakGlassStatus.APPROVED and grant.expires_at is not None and now < grant.expires_at


@dataclass(frozen=True)
class BeneficiaryIdentity:
    """What a break-glass opening shows: the registered ``break_glass_view`` fields."""

    beneficiary_id: uuid.UUID
    insurer_id: uuid.UUID
    member_number: str
    nir: str
    last_name: str
    first_name: str
    birth_date: date
    birth_rank: int
    marital_status: str
    contract_start: date
    contract_end: date | None


def open_break_glass(
    session: Session,
    *,
    keys: KeyService,
    grant_id: uuid.UUID,
    operator_id: uuid.UUID,
    now: datetime,
    address: str | None = None,
    device: str | None = None,
) -> BeneficiaryIdentity:
    """The beneficiary's identity for the operator who asked, while the grant lasts; recorded."""
    grant = _grant(session, grant_id)
    if grant.requested_by != operator_id:
        raise BreakGlassRefused("only the operator who asked may use this grant")
    if not usable(grant, now):
        raise BreakGlassRefused("this grant is not approved, has expired or was revoked")
    bind_tenant(session, grant.insurer_id)
    row = session.execute(
        select(Beneficiary, Contract)
        .join(Contract, (Contract.insurer_id == Beneficiary.insurer_id) & (Contract.id == Beneficiary.contract_id))
        .where(Beneficiary.insurer_id == grant.insurer_id, Beneficiary.id == grant.beneficiary_id)
    ).first()
    if row is None:
        raise NotFound("no such beneficiary")
    beneficiary, contract = row
    cipher = keys.cipher(session, grant.insurer_id)

    def clear(column: str) -> str:
        blob: bytes = getattr(beneficiary, f"{column}_enc")
        return cipher.decrypt(blob, table="beneficiaries", row_id=beneficiary.id, column=column)

    identity = BeneficiaryIdentity(
        beneficiary_id=beneficiary.id,
        insurer_id=beneficiary.insurer_id,
        member_number=contract.member_number,
        nir=clear("nir"),
        last_name=clear("last_name"),
        first_name=clear("first_name"),
        birth_date=date.fromisoformat(clear("birth_date")),
        birth_rank=beneficiary.birth_rank,
        marital_status=clear("marital_status"),
        contract_start=contract.start_date,
        contract_end=contract.end_date,
    )
    # Recorded before anything leaves; the operator's name is never shown to the beneficiary.
    record_access(
        session,
        operation=Operation.BREAK_GLASS_VIEW,
        actor=Actor(ActorKind.OPERATOR, id=operator_id),
        channel=Channel.SECURITY_CONSOLE,
        outcome=Outcome.DISCLOSED,
        insurer_id=grant.insurer_id,
        beneficiary_id=grant.beneficiary_id,
        device=device,
        address=address,
        reference=grant.ticket,
        break_glass_id=grant.id,
        occurred_at=now,
    )
    return identity


def grants(
    session: Session,
    *,
    insurer_id: uuid.UUID | None = None,
    status: BreakGlassStatus | None = None,
    ids: Sequence[uuid.UUID] = (),
    limit: int = 100,
) -> Sequence[BreakGlassGrant]:
    query = select(BreakGlassGrant).order_by(BreakGlassGrant.requested_at.desc()).limit(limit)
    if insurer_id is not None:
        query = query.where(BreakGlassGrant.insurer_id == insurer_id)
    if status is not None:
        query = query.where(BreakGlassGrant.status == status)
    if ids:
        query = query.where(BreakGlassGrant.id.in_(list(ids)))
    return session.scalars(query).all()


def grants_page(
    session: Session, *, status: BreakGlassStatus | None = None, limit: int = 100, cursor: Cursor | None = None
) -> Page[BreakGlassGrant]:
    """The grants, newest first, a page at a time (after ``cursor``)."""
    query = select(BreakGlassGrant)
    if status is not None:
        query = query.where(BreakGlassGrant.status == status)
    return keyset_page(
        session,
        query,
        at=BreakGlassGrant.requested_at,
        row_id=BreakGlassGrant.id,
        cursor=cursor,
        limit=limit,
        descending=True,
    )


# -- units of work: each commits its grant (and, to open one, the access event) -----------------------


def do_request_break_glass(session: Session, **request: Any) -> BreakGlassGrant:
    grant = request_break_glass(session, **request)
    session.commit()
    log.info("break_glass_requested", grant_id=str(grant.id), operator_id=str(grant.requested_by))
    return grant


def do_decide_break_glass(
    session: Session, *, grant_id: uuid.UUID, operator_id: uuid.UUID, approve: bool, now: datetime
) -> BreakGlassGrant:
    grant = decide_break_glass(session, grant_id=grant_id, operator_id=operator_id, approve=approve, now=now)
    session.commit()
    log.info("break_glass_decided", grant_id=str(grant.id), approved=approve, operator_id=str(grant.decided_by))
    return grant


def do_revoke_break_glass(
    session: Session, *, grant_id: uuid.UUID, operator_id: uuid.UUID, now: datetime
) -> BreakGlassGrant:
    revoke_break_glass(session, grant_id=grant_id, operator_id=operator_id, now=now)
    session.commit()
    return _grant(session, grant_id)


def do_open_break_glass(session: Session, **request: Any) -> BeneficiaryIdentity:
    """``open_break_glass``, committed: the access event is in the log before the identity leaves."""
    found = open_break_glass(session, **request)
    session.commit()
    return found
