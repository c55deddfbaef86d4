"""The insured person's access log, filtered by who accessed: health professionals, their insurer,
Rempart's operators, or themself (``/me/access-log?who=...``).

The same events, words and pages as ``access_log.beneficiary_access_log``, with one more condition
on the kind of actor; the cursor of a filtered page pages back within the same filter.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from rempart.audit.access_log import Lang, Page, decode_cursor, page_of_events
from rempart.audit.models import AccessEvent, ActorKind
from rempart.audit.queries import _before, _sealed_and_pending


class Who(StrEnum):
    """Who accessed, as the person sorts them."""

    PROFESSIONALS = "professionals"
    INSURER = "insurer"
    PLATFORM = "platform"
    ME = "me"


ACTORS: dict[Who, frozenset[ActorKind]] = {
    Who.PROFESSIONALS: frozenset({ActorKind.PROFESSIONAL, ActorKind.PRACTICE_SOFTWARE}),
    Who.INSURER: frozenset({ActorKind.INSURER_STAFF, ActorKind.SYSTEM}),
    Who.PLATFORM: frozenset({ActorKind.OPERATOR}),
    Who.ME: frozenset({ActorKind.BENEFICIARY}),
}


def my_access_log(
    session: Session,
    *,
    insurer_id: uuid.UUID,
    beneficiary_id: uuid.UUID,
    lang: Lang = "en",
    who: Who | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> Page:
    """The person's own accesses, newest first, only those by ``who`` when given."""
    limit = max(1, min(limit, 200))
    before = decode_cursor(cursor)

    def query(part: ColumnElement[bool]) -> Select[AccessEvent]:
        chosen = select(AccessEvent).where(
            AccessEvent.beneficiary_id == beneficiary_id, AccessEvent.insurer_id == insurer_id, part
        )
        if who is not None:
            chosen = chosen.where(AccessEvent.actor_kind.in_(sorted(ACTORS[who])))
        if before is not None:
            chosen = chosen.where(_before(before))
        return chosen

    events = _sealed_and_pending(session, query, newest_first=True, limit=limit + 1)
    return page_of_events(session, events, limit=limit, lang=lang, controller=False)
