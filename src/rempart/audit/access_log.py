"""What the people concerned see of the log: the beneficiary's own accesses, and the insurer's view
of accesses to its members (anchors: the German ePA's audit view, Estonia's data tracker).

The beneficiary sees who (the practice's name and profession; "staff of <insurer>" rather than a
staff member's name unless the insurer chose to show names; "a Rempart operator" for break-glass,
with the ticket and the fact that two operators approved), when, why and which data. The insurer,
as the controller, also sees the ids, channel and address of each access and the operators of each
break-glass grant. Reading the insurer's view is itself an access event (it tells who treated whom).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.audit.breakglass import grants
from rempart.audit.disclosures import FIELD_LABELS, PURPOSE_LABELS, DataField, Operation, Purpose, decode_fields
from rempart.audit.models import AccessEvent, ActorKind, BreakGlassGrant, Channel, InsurerLogPolicy, Outcome
from rempart.audit.queries import Cursor, cursor_of, events_about_beneficiary, events_of_insurer
from rempart.audit.service import Actor, record_access
from rempart.identity.models import Account
from rempart.insurers.models import Insurer
from rempart.pagination import CursorInvalid
from rempart.professionals.models import Practice

Lang = Literal["en", "fr"]

PROFESSION_LABELS: dict[str, dict[str, str]] = {
    "pharmacist": {"en": "pharmacy", "fr": "pharmacie"},
    "optician": {"en": "optician", "fr": "opticien"},
    "audioprosthetist": {"en": "hearing aid specialist", "fr": "audioprothésiste"},
    "dentist": {"en": "dentist", "fr": "chirurgien-dentiste"},
    "physician": {"en": "physician", "fr": "médecin"},
    "midwife": {"en": "midwife", "fr": "sage-femme"},
    "nurse": {"en": "nurse", "fr": "infirmier"},
    "physiotherapist": {"en": "physiotherapist", "fr": "masseur-kinésithérapeute"},
    "lab": {"en": "medical laboratory", "fr": "laboratoire de biologie"},
    "radiology": {"en": "imaging centre", "fr": "centre d'imagerie"},
    "hospital": {"en": "hospital", "fr": "établissement de santé"},
    "transport": {"en": "medical transport", "fr": "transport sanitaire"},
}
OUTCOME_LABELS: dict[Outcome, dict[str, str]] = {
    Outcome.DISCLOSED: {"en": "seen", "fr": "consulté"},
    Outcome.MISS: {"en": "no match", "fr": "aucune correspondance"},
    Outcome.REFUSED: {"en": "attempt refused", "fr": "tentative refusée"},
    Outcome.ERROR: {"en": "failed, nothing shown", "fr": "échec, rien n'a été montré"},
}
_TEXT = {
    "staff": {"en": "staff of {insurer}", "fr": "personnel de {insurer}"},
    "operator": {
        "en": "a Rempart operator, emergency access approved by a second operator",
        "fr": "un opérateur Rempart, accès d'urgence approuvé par un second opérateur",
    },
    "you": {"en": "you", "fr": "vous"},
    "system": {"en": "{insurer} (automatic processing)", "fr": "{insurer} (traitement automatique)"},
    "professional": {"en": "a health professional", "fr": "un professionnel de santé"},
    "insurer": {"en": "your insurer", "fr": "votre complémentaire"},
}


@dataclass(frozen=True)
class Who:
    kind: str  # practice, insurer_staff, operator, you, system
    label: str
    profession: str | None = None


@dataclass(frozen=True)
class BreakGlassInfo:
    grant_id: uuid.UUID
    ticket: str
    reason: str
    requested_by: uuid.UUID
    approved_by: uuid.UUID | None
    requested_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class AccessEntry:
    event_id: uuid.UUID
    at: datetime
    who: Who
    purpose: Purpose
    why: str
    fields: list[DataField]
    what: list[str]
    outcome: Outcome
    outcome_label: str
    channel: Channel
    break_glass: BreakGlassInfo | None = None
    # The insurer's view only.
    operation: str | None = None
    actor_kind: ActorKind | None = None
    actor_id: uuid.UUID | None = None
    practice_id: uuid.UUID | None = None
    professional_id: uuid.UUID | None = None
    beneficiary_id: uuid.UUID | None = None
    address: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Page:
    entries: list[AccessEntry]
    next_cursor: str | None


def encode_cursor(cursor: Cursor) -> str:
    at, event_id = cursor
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{event_id}".encode()).decode()


def decode_cursor(value: str | None) -> Cursor | None:
    if not value:
        return None
    try:
        at, event_id = base64.urlsafe_b64decode(value.encode()).decode().split("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError
        # What the query binds: a time in UTC (year 1 at +05:00 has none) and a BIGINT event id.
        moment, number = moment.astimezone(UTC), int(event_id)
        if not 0 <= number < 2**63:
            raise ValueError
        return moment, number
    except (ValueError, OverflowError):
        raise CursorInvalid("the page cursor is not one this service gave") from None


class _Names:
    """Practice, insurer and staff names for a page of events, read in one query each."""

    def __init__(self, session: Session, events: Sequence[AccessEvent]) -> None:
        practice_ids = {e.practice_id for e in events if e.practice_id}
        insurer_ids = {e.insurer_id for e in events if e.insurer_id}
        staff_ids = {e.actor_id for e in events if e.actor_kind is ActorKind.INSURER_STAFF and e.actor_id}
        self.practices = {
            p.id: (p.name, p.profession.value)
            for p in (session.scalars(select(Practice).where(Practice.id.in_(practice_ids))) if practice_ids else [])
        }
        self.insurers = {
            i.id: i.name
            for i in (session.scalars(select(Insurer).where(Insurer.id.in_(insurer_ids))) if insurer_ids else [])
        }
        self.show_staff = {
            p.insurer_id: p.show_staff_names
            for p in (
                session.scalars(select(InsurerLogPolicy).where(InsurerLogPolicy.insurer_id.in_(insurer_ids)))
                if insurer_ids
                else []
            )
        }
        self.staff = {
            a.id: a.login
            for a in (session.scalars(select(Account).where(Account.id.in_(staff_ids))) if staff_ids else [])
        }

    def who(self, event: AccessEvent, lang: Lang, *, controller: bool) -> Who:
        insurer = self.insurers.get(event.insurer_id, _TEXT["insurer"][lang]) if event.insurer_id else ""
        profession = event.profession
        label_of_profession = PROFESSION_LABELS.get(profession or "", {}).get(lang, profession)
        if event.actor_kind in (ActorKind.PROFESSIONAL, ActorKind.PRACTICE_SOFTWARE):
            name, practice_profession = (
                self.practices.get(event.practice_id, (None, None))
                if event.practice_id
                else (
                    None,
                    None,
                )
            )
            profession = profession or practice_profession
            label_of_profession = PROFESSION_LABELS.get(profession or "", {}).get(lang, profession)
            return Who("practice", name or _TEXT["professional"][lang], label_of_profession)
        if event.actor_kind is ActorKind.INSURER_STAFF:
            named = controller or self.show_staff.get(event.insurer_id or uuid.UUID(int=0), False)
            login = self.staff.get(event.actor_id) if named and event.actor_id else None
            return Who("insurer_staff", login or _TEXT["staff"][lang].format(insurer=insurer))
        if event.actor_kind is ActorKind.OPERATOR:
            return Who("operator", _TEXT["operator"][lang])
        if event.actor_kind is ActorKind.BENEFICIARY:
            return Who("beneficiary", _TEXT["you"][lang]) if not controller else Who("beneficiary", "the beneficiary")
        return Who("system", _TEXT["system"][lang].format(insurer=insurer or "Rempart"))


def _entries(session: Session, events: Sequence[AccessEvent], lang: Lang, *, controller: bool) -> list[AccessEntry]:
    names = _Names(session, events)
    glass = {g.id: g for g in grants(session, ids=[e.break_glass_id for e in events if e.break_glass_id], limit=1000)}
    out = []
    for event in events:
        fields = decode_fields(event.fields)
        grant: BreakGlassGrant | None = glass.get(event.break_glass_id) if event.break_glass_id else None
        info = None
        if grant is not None:
            info = BreakGlassInfo(
                grant_id=grant.id,
                ticket=grant.ticket,
                reason=grant.reason,
                requested_by=grant.requested_by,
                approved_by=grant.decided_by,
                requested_at=grant.requested_at,
                expires_at=grant.expires_at,
            )
        extra = {}
        if controller:
            extra = {
                "operation": event.operation,
                "actor_kind": event.actor_kind,
                "actor_id": event.actor_id,
                "practice_id": event.practice_id,
                "professional_id": event.professional_id,
                "beneficiary_id": event.beneficiary_id,
                "address": event.address,
                "reference": event.reference,
            }
        elif info is not None:
            # The person sees the ticket and the reason, not which operators.
            info = BreakGlassInfo(
                info.grant_id, info.ticket, info.reason, uuid.UUID(int=0), None, info.requested_at, None
            )
        out.append(
            AccessEntry(
                event_id=event.event_id,
                at=event.occurred_at,
                who=names.who(event, lang, controller=controller),
                purpose=event.purpose,
                why=PURPOSE_LABELS[event.purpose][lang],
                fields=fields,
                what=[FIELD_LABELS[f][lang] for f in fields],
                outcome=event.outcome,
                outcome_label=OUTCOME_LABELS[event.outcome][lang],
                channel=event.channel,
                break_glass=info,
                **extra,  # type: ignore[arg-type]
            )
        )
    return out


def page_of_events(
    session: Session, events: Sequence[AccessEvent], *, limit: int, lang: Lang, controller: bool
) -> Page:
    """The first ``limit`` of ``events`` (read ``limit + 1``), with the next page's cursor only when
    more follow: the last page has none, even when it is full."""
    shown = events[:limit]
    next_cursor = encode_cursor(cursor_of(shown[-1])) if len(events) > limit else None
    return Page(_entries(session, shown, lang, controller=controller), next_cursor)


def beneficiary_access_log(
    session: Session,
    *,
    insurer_id: uuid.UUID,
    beneficiary_id: uuid.UUID,
    lang: Lang = "en",
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """The person's own accesses, newest first."""
    limit = max(1, min(limit, 200))
    events = events_about_beneficiary(
        session, insurer_id=insurer_id, beneficiary_id=beneficiary_id, before=decode_cursor(cursor), limit=limit + 1
    )
    return page_of_events(session, events, limit=limit, lang=lang, controller=False)


def insurer_access_log(
    session: Session,
    *,
    insurer_id: uuid.UUID,
    reader: Actor,
    channel: Channel,
    address: str | None = None,
    device: str | None = None,
    since: datetime | None = None,
    beneficiary_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    of_channel: Channel | None = None,
    of_purpose: Purpose | None = None,
    lang: Lang = "en",
    cursor: str | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> Page:
    """Accesses to the insurer's members (misses and refusals included), newest first, through
    ``of_channel`` and for ``of_purpose`` when given; the reading (through ``channel``) is recorded."""
    limit = max(1, min(limit, 500))
    events = events_of_insurer(
        session,
        insurer_id=insurer_id,
        since=since,
        before=decode_cursor(cursor),
        beneficiary_id=beneficiary_id,
        practice_id=practice_id,
        channel=of_channel,
        purpose=of_purpose,
        limit=limit + 1,
    )
    record_access(
        session,
        operation=Operation.ACCESS_LOG_VIEW,
        actor=reader,
        channel=channel,
        outcome=Outcome.DISCLOSED,
        insurer_id=insurer_id,
        # Filtered on one person: they see that their insurer looked at their access log.
        beneficiary_id=beneficiary_id,
        device=device,
        address=address,
        occurred_at=now,
    )
    return page_of_events(session, events, limit=limit, lang=lang, controller=True)


def set_staff_names_shown(session: Session, *, insurer_id: uuid.UUID, shown: bool, now: datetime) -> None:
    policy = session.get(InsurerLogPolicy, insurer_id)
    if policy is None:
        session.add(InsurerLogPolicy(insurer_id=insurer_id, show_staff_names=shown, updated_at=now))
    else:
        policy.show_staff_names, policy.updated_at = shown, now
    session.flush()


# -- units of work: each commits, so that no answer leaves whose record did not ---------------------


def do_read_insurer_access_log(session: Session, **query: Any) -> Page:
    """``insurer_access_log``, committed: the reading is in the log before the page leaves."""
    page = insurer_access_log(session, **query)
    session.commit()
    return page


def do_set_staff_names_shown(session: Session, *, insurer_id: uuid.UUID, shown: bool, now: datetime) -> None:
    set_staff_names_shown(session, insurer_id=insurer_id, shown=shown, now=now)
    session.commit()
