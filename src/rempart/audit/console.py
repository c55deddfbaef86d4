"""What the security console's break-glass page reads: the grants with their operators' logins and
their insurers' names, and the insurers an operator may ask about. No beneficiary's identity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.audit.breakglass import grants, usable
from rempart.audit.models import BreakGlassStatus
from rempart.identity.models import Account
from rempart.insurers.models import Insurer


@dataclass(frozen=True)
class GrantView:
    id: uuid.UUID
    insurer: str
    beneficiary_id: uuid.UUID
    status: str  # requested, approved, in_force, expired, refused, revoked
    reason: str
    ticket: str
    minutes: int
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    expires_at: datetime | None
    mine: bool  # asked by the operator looking: they cannot decide it
    may_decide: bool
    may_revoke: bool


@dataclass(frozen=True)
class InsurerChoice:
    id: uuid.UUID
    label: str


def grant_views(session: Session, *, operator_id: uuid.UUID, now: datetime, limit: int = 100) -> list[GrantView]:
    rows = grants(session, limit=limit)
    people = {r.requested_by for r in rows} | {r.decided_by for r in rows if r.decided_by}
    logins = (
        dict(session.execute(select(Account.id, Account.login).where(Account.id.in_(people))).all()) if people else {}
    )
    insurer_ids = {r.insurer_id for r in rows}
    insurers = (
        dict(session.execute(select(Insurer.id, Insurer.name).where(Insurer.id.in_(insurer_ids))).all())
        if insurer_ids
        else {}
    )
    views = []
    for r in rows:
        status = r.status.value
        if r.status is BreakGlassStatus.APPROVED:
            status = "in_force" if usable(r, now) else "expired"
        mine = r.requested_by == operator_id
        views.append(
            GrantView(
                id=r.id,
                insurer=insurers.get(r.insurer_id, str(r.insurer_id)),
                beneficiary_id=r.beneficiary_id,
                status=status,
                reason=r.reason,
                ticket=r.ticket,
                minutes=r.duration_minutes,
                requested_by=logins.get(r.requested_by, "—"),
                requested_at=r.requested_at,
                decided_by=logins.get(r.decided_by) if r.decided_by else None,
                decided_at=r.decided_at,
                expires_at=r.expires_at,
                mine=mine,
                may_decide=not mine and r.status is BreakGlassStatus.REQUESTED,
                may_revoke=status == "in_force" and operator_id in {r.requested_by, r.decided_by},
            )
        )
    return views


def insurer_choices(session: Session) -> list[InsurerChoice]:
    rows = session.execute(select(Insurer.id, Insurer.name, Insurer.amc_number).order_by(Insurer.name)).all()
    return [InsurerChoice(i, f"{name} ({amc})") for i, name, amc in rows]
