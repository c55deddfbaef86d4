"""Security events: what happened to an account or a client, for its owner and for operators."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.identity.models import SecurityEvent, SecurityEventKind
from rempart.logs import get_logger

log = get_logger("rempart.identity.events")


def record_event(
    *,
    session: Session,
    kind: SecurityEventKind,
    at: datetime,
    account_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
    address: str | None = None,
    **detail: str,
) -> SecurityEvent:
    """Add one event to the caller's transaction. ``detail`` carries ids and reasons only."""
    event = SecurityEvent(
        id=uuid.uuid4(),
        at=at,
        kind=kind,
        account_id=account_id,
        practice_id=practice_id,
        client_id=client_id,
        address=address,
        detail=json.dumps(detail, sort_keys=True),
    )
    session.add(event)
    log.info(
        "security_event",
        kind=kind.value,
        account_id=str(account_id) if account_id else None,
        client_id=str(client_id) if client_id else None,
    )
    return event


def events_of_account(session: Session, account_id: uuid.UUID, *, limit: int = 100) -> Sequence[SecurityEvent]:
    return session.scalars(
        select(SecurityEvent)
        .where(SecurityEvent.account_id == account_id)
        .order_by(SecurityEvent.at.desc(), SecurityEvent.id)
        .limit(limit)
    ).all()


def events_for_operators(
    session: Session,
    *,
    account_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    kind: SecurityEventKind | None = None,
    limit: int = 200,
) -> Sequence[SecurityEvent]:
    query = select(SecurityEvent)
    if account_id is not None:
        query = query.where(SecurityEvent.account_id == account_id)
    if practice_id is not None:
        query = query.where(SecurityEvent.practice_id == practice_id)
    if kind is not None:
        query = query.where(SecurityEvent.kind == kind)
    return session.scalars(query.order_by(SecurityEvent.at.desc(), SecurityEvent.id).limit(limit)).all()
