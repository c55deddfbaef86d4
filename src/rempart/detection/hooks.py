"""How containment reaches other domains: accounts, API clients and professionals with their
sessions and tokens (identity), the account's security events, and the access log.

Detection calls these inside its own transaction (see ``recorder``); ``wiring`` plugs identity's
and the audit log's functions in. ``RecordOnly`` runs when they are absent: detection's own events
remain the record and nothing else is touched.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from rempart.detection.actor import Actor
from rempart.detection.models import ContainmentLevel, SubjectKind


class ContainmentHooks(Protocol):
    def suspend(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str, now: datetime
    ) -> None:
        """Suspend the account, client or professional and revoke every session and token now."""
        ...

    def reinstate(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str, now: datetime
    ) -> None:
        """Undo ``suspend`` (an operator lifted the containment); revoked credentials stay revoked."""
        ...

    def step_recorded(
        self,
        session: Session,
        *,
        kind: SubjectKind,
        subject_id: uuid.UUID,
        level: ContainmentLevel,
        signal: str,
        actor: Actor | None,
        now: datetime,
    ) -> None:
        """A step of the ladder, or a lift (``level`` normal): security events and access log."""
        ...


class RecordOnly:
    def suspend(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str, now: datetime
    ) -> None:
        return None

    def reinstate(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str, now: datetime
    ) -> None:
        return None

    def step_recorded(
        self,
        session: Session,
        *,
        kind: SubjectKind,
        subject_id: uuid.UUID,
        level: ContainmentLevel,
        signal: str,
        actor: Actor | None,
        now: datetime,
    ) -> None:
        return None
