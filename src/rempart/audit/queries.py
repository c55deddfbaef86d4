"""Reading the log: the two questions the indexes are built for.

"Events of these actors in this window" serves detection and the incident scope (compromised
accounts, API clients, practices and a time window); "events about this beneficiary" serves the
beneficiary's own view and the Art. 34 letters.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from rempart.audit.models import AccessEvent


def events_of_actors(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    actor_ids: Collection[uuid.UUID] = (),
    practice_ids: Collection[uuid.UUID] = (),
    limit: int | None = None,
) -> Sequence[AccessEvent]:
    """Events by any of these accounts or API clients, or in any of these practices, in
    ``[since, until)``, oldest first."""
    if not actor_ids and not practice_ids:
        return []
    who = []
    if actor_ids:
        who.append(AccessEvent.actor_id.in_(list(actor_ids)))
    if practice_ids:
        who.append(AccessEvent.practice_id.in_(list(practice_ids)))
    query = (
        select(AccessEvent)
        .where(or_(*who), AccessEvent.occurred_at >= since, AccessEvent.occurred_at < until)
        .order_by(AccessEvent.occurred_at, AccessEvent.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


Cursor = tuple[datetime, int]


def _before(cursor: Cursor) -> ColumnElement[bool]:
    """Keyset paging, newest first: strictly older than the last event of the previous page."""
    at, event_id = cursor
    return or_(AccessEvent.occurred_at < at, and_(AccessEvent.occurred_at == at, AccessEvent.id < event_id))


def cursor_of(event: AccessEvent) -> Cursor:
    return (event.occurred_at, event.id)


def events_about_beneficiary(
    session: Session,
    *,
    insurer_id: uuid.UUID,
    beneficiary_id: uuid.UUID,
    since: datetime | None = None,
    before: Cursor | None = None,
    limit: int = 100,
) -> Sequence[AccessEvent]:
    """Events that name this beneficiary, newest first; ``before`` (a ``cursor_of`` the last event
    seen) pages back in time."""
    query = select(AccessEvent).where(
        AccessEvent.beneficiary_id == beneficiary_id, AccessEvent.insurer_id == insurer_id
    )
    if since is not None:
        query = query.where(AccessEvent.occurred_at >= since)
    if before is not None:
        query = query.where(_before(before))
    return session.scalars(query.order_by(AccessEvent.occurred_at.desc(), AccessEvent.id.desc()).limit(limit)).all()


def events_of_insurer(
    session: Session,
    *,
    insurer_id: uuid.UUID,
    since: datetime | None = None,
    before: Cursor | None = None,
    beneficiary_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    limit: int = 100,
) -> Sequence[AccessEvent]:
    """Accesses to one insurer's members (and its own refusals and misses), newest first."""
    query = select(AccessEvent).where(AccessEvent.insurer_id == insurer_id)
    if since is not None:
        query = query.where(AccessEvent.occurred_at >= since)
    if before is not None:
        query = query.where(_before(before))
    if beneficiary_id is not None:
        query = query.where(AccessEvent.beneficiary_id == beneficiary_id)
    if practice_id is not None:
        query = query.where(AccessEvent.practice_id == practice_id)
    return session.scalars(query.order_by(AccessEvent.occurred_at.desc(), AccessEvent.id.desc()).limit(limit)).all()
