"""Reading the log: the two questions the indexes are built for.

"Events of these actors in this window" serves detection and the incident scope (compromised
accounts, API clients, practices and a time window); "events about this beneficiary" serves the
beneficiary's own view and the Art. 34 letters.

Each question is asked twice: of the sealed events, through its index, and of the events still
waiting for the sealer (a second or two of them), through the sealer's queue. On SQLite the query
indexes hold sealed events only (migration 0008: the rights check then pays one row and one queue
entry per event), so a query must say which of the two it wants for SQLite to use them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from rempart.audit.disclosures import Purpose
from rempart.audit.models import AccessEvent, Channel


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
    window = (AccessEvent.occurred_at >= since, AccessEvent.occurred_at < until)
    # The part goes inside each branch: SQLite uses an index for each side of an OR only when that
    # side alone implies the index's condition.
    return _sealed_and_pending(
        session,
        lambda part: select(AccessEvent).where(or_(*(and_(w, part) for w in who)), part, *window),
        newest_first=False,
        limit=limit,
    )


def _sealed_and_pending(
    session: Session,
    query: Callable[[ColumnElement[bool]], Select[AccessEvent]],
    *,
    newest_first: bool,
    limit: int | None,
) -> list[AccessEvent]:
    """The events ``query(part)`` selects, sealed (through the query indexes) and pending (through
    the sealer's queue), in time order, at most ``limit``."""
    order = (
        (AccessEvent.occurred_at.desc(), AccessEvent.id.desc())
        if newest_first
        else (AccessEvent.occurred_at, AccessEvent.id)
    )
    parts: list[AccessEvent] = []
    for part in (AccessEvent.seal_seq.is_not(None), AccessEvent.seal_seq.is_(None)):
        ordered = query(part).order_by(*order)
        parts.extend(session.scalars(ordered if limit is None else ordered.limit(limit)).all())
    parts.sort(key=cursor_of, reverse=newest_first)
    return parts if limit is None else parts[:limit]


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
    return _sealed_and_pending(session, query.where, newest_first=True, limit=limit)


def events_of_insurer(
    session: Session,
    *,
    insurer_id: uuid.UUID,
    since: datetime | None = None,
    before: Cursor | None = None,
    beneficiary_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    channel: Channel | None = None,
    purpose: Purpose | None = None,
    limit: int = 100,
) -> Sequence[AccessEvent]:
    """Accesses to one insurer's members (and its own refusals and misses), newest first; the
    channel and the purpose filter in the query, so that every page holds ``limit`` of them."""
    query = select(AccessEvent).where(AccessEvent.insurer_id == insurer_id)
    if channel is not None:
        query = query.where(AccessEvent.channel == channel)
    if purpose is not None:
        query = query.where(AccessEvent.purpose == purpose)
    if since is not None:
        query = query.where(AccessEvent.occurred_at >= since)
    if before is not None:
        query = query.where(_before(before))
    if beneficiary_id is not None:
        query = query.where(AccessEvent.beneficiary_id == beneficiary_id)
    if practice_id is not None:
        query = query.where(AccessEvent.practice_id == practice_id)
    return _sealed_and_pending(session, query.where, newest_first=True, limit=limit)
