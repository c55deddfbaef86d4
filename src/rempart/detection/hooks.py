"""How containment reaches other domains: accounts, API clients and their sessions and tokens
(identity), the account's security events, and the access log.

Detection calls these inside its own transaction; identity and the audit log plug in their
functions here. ``RecordOnly`` is what runs when they are absent: detection's own events remain the
record and nothing else is touched.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy.orm import Session

from rempart.detection.models import SubjectKind


class ContainmentHooks(Protocol):
    def suspend(self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str) -> None:
        """Suspend the account, client or professional and revoke every session and token now."""
        ...

    def reinstate(self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str) -> None:
        """Undo ``suspend`` (an operator lifted the containment); revoked credentials stay revoked."""
        ...

    def security_event(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, event: str, detail: dict[str, Any]
    ) -> None:
        """Show a containment step in the account's (or the client's practice's) security events."""
        ...

    def access_event(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, event: str, detail: dict[str, Any]
    ) -> None:
        """Record a containment step in the access log."""
        ...


class RecordOnly:
    def suspend(self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str) -> None:
        return None

    def reinstate(self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str) -> None:
        return None

    def security_event(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, event: str, detail: dict[str, Any]
    ) -> None:
        return None

    def access_event(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, event: str, detail: dict[str, Any]
    ) -> None:
        return None
