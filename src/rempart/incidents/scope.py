"""An incident's scope turned into facts by the access log.

One aggregate query per scope set and per part of the log (sealed events through the actor,
practice and professional indexes; the few still waiting for the sealer through its queue), grouped
by insurer, beneficiary, outcome, channel and disclosed fields: the rows that come back are a
handful per person, whatever the number of events. Exact and repeatable: the same scope over the
same log gives the same facts, and a wider scope is simply computed again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from rempart.audit.disclosures import DataField
from rempart.audit.models import AccessEvent, Channel, Outcome
from rempart.incidents.facts import AttemptFacts, InsurerFacts, LogStatus, PersonFacts, ScopeFacts, ScopeSet
from rempart.insurers.models import Insurer
from rempart.members.models import Beneficiary, Contract
from rempart.professionals.models import PracticeMembership
from rempart.tenancy import tenant


@dataclass
class _Person:
    fields: set[DataField] = field(default_factory=set)
    channels: set[Channel] = field(default_factory=set)
    records: int = 0
    attempts: int = 0
    attempt_channels: set[Channel] = field(default_factory=set)
    first_seen: datetime | None = None
    last_seen: datetime | None = None


def _who(
    scope: ScopeSet, part: ColumnElement[bool], practices_of_professionals: list[uuid.UUID]
) -> ColumnElement[bool]:
    # The part goes inside each branch: SQLite uses an index for each side of an OR only when that
    # side alone implies the index's condition (``rempart.audit.queries``).
    branches = []
    if scope.actor_ids:
        branches.append(and_(AccessEvent.actor_id.in_(sorted(scope.actor_ids)), part))
    if scope.practice_ids:
        branches.append(and_(AccessEvent.practice_id.in_(sorted(scope.practice_ids)), part))
    if scope.professional_ids:
        # A professional always acts for a practice: their events are found through the practices
        # they belong to (the practice index), then kept when they acted for that professional.
        branches.append(
            and_(
                AccessEvent.practice_id.in_(practices_of_professionals),
                AccessEvent.professional_id.in_(sorted(scope.professional_ids)),
                part,
            )
        )
    return or_(*branches)


def _practices_of(session: Session, professional_ids: frozenset[uuid.UUID]) -> list[uuid.UUID]:
    if not professional_ids:
        return []
    return sorted(
        set(
            session.scalars(
                select(PracticeMembership.practice_id).where(
                    PracticeMembership.professional_id.in_(sorted(professional_ids))
                )
            )
        )
    )


def _aggregate(session: Session, scope: ScopeSet) -> Iterable[tuple[object, ...]]:
    practices = _practices_of(session, scope.professional_ids)
    for part in (AccessEvent.seal_seq.is_not(None), AccessEvent.seal_seq.is_(None)):
        query = (
            select(
                AccessEvent.insurer_id,
                AccessEvent.beneficiary_id,
                AccessEvent.outcome,
                AccessEvent.channel,
                AccessEvent.fields,
                func.count(),
                func.min(AccessEvent.occurred_at),
                func.max(AccessEvent.occurred_at),
            )
            .where(
                _who(scope, part, practices),
                part,
                AccessEvent.occurred_at >= scope.since,
                AccessEvent.occurred_at < scope.until,
            )
            .group_by(
                AccessEvent.insurer_id,
                AccessEvent.beneficiary_id,
                AccessEvent.outcome,
                AccessEvent.channel,
                AccessEvent.fields,
            )
        )
        yield from session.execute(query)


def compute_scope(
    session: Session, *, sets: Sequence[ScopeSet], now: datetime, log: LogStatus | None = None
) -> ScopeFacts:
    """The facts of a scope: per insurer, who was disclosed what and through which channels, and
    who was only tried. The caller's session must see every insurer's events (the owner, or an
    operator's session: the access log is not behind the tenant wall)."""
    people: dict[tuple[uuid.UUID, uuid.UUID], _Person] = {}
    unattributed: dict[uuid.UUID, int] = {}
    examined = 0
    for scope in sets:
        for row in _aggregate(session, scope):
            insurer_id, beneficiary_id, outcome, channel, fields, count, first, last = row
            assert isinstance(count, int)
            examined += count
            if insurer_id is None:
                continue  # a miss on an unknown card: no controller to tell, nobody to name
            assert isinstance(insurer_id, uuid.UUID)
            if beneficiary_id is None:
                unattributed[insurer_id] = unattributed.get(insurer_id, 0) + count
                continue
            assert isinstance(beneficiary_id, uuid.UUID)
            assert isinstance(first, datetime)
            assert isinstance(last, datetime)
            person = people.setdefault((insurer_id, beneficiary_id), _Person())
            if outcome == Outcome.DISCLOSED:
                person.records += count
                person.channels.add(Channel(str(channel)))
                person.fields.update(DataField(f) for f in str(fields).split(",") if f)
                person.first_seen = min(first, person.first_seen or first)
                person.last_seen = max(last, person.last_seen or last)
            else:
                person.attempts += count
                person.attempt_channels.add(Channel(str(channel)))
    insurers = _insurer_facts(session, people, unattributed)
    return ScopeFacts(sets=tuple(sets), computed_at=now, insurers=insurers, events_examined=examined, log=log)


def _insurer_facts(
    session: Session, people: dict[tuple[uuid.UUID, uuid.UUID], _Person], unattributed: dict[uuid.UUID, int]
) -> tuple[InsurerFacts, ...]:
    by_insurer: dict[uuid.UUID, list[uuid.UUID]] = {}
    for insurer_id, beneficiary_id in people:
        by_insurer.setdefault(insurer_id, []).append(beneficiary_id)
    for insurer_id in unattributed:
        by_insurer.setdefault(insurer_id, [])
    result = []
    for insurer_id, beneficiary_ids in by_insurer.items():
        insurer = session.get_one(Insurer, insurer_id)
        cards = cards_of(session, insurer_id, beneficiary_ids)
        disclosed: list[PersonFacts] = []
        attempted: list[AttemptFacts] = []
        records = 0
        for beneficiary_id in beneficiary_ids:
            seen = people[(insurer_id, beneficiary_id)]
            member_number, birth_rank = cards.get(beneficiary_id, ("?", 1))
            if seen.records:
                assert seen.first_seen is not None
                assert seen.last_seen is not None
                records += seen.records
                disclosed.append(
                    PersonFacts(
                        beneficiary_id=beneficiary_id,
                        member_number=member_number,
                        birth_rank=birth_rank,
                        fields=frozenset(seen.fields),
                        channels=frozenset(seen.channels),
                        records=seen.records,
                        first_seen=seen.first_seen,
                        last_seen=seen.last_seen,
                    )
                )
            else:
                attempted.append(
                    AttemptFacts(
                        beneficiary_id=beneficiary_id,
                        member_number=member_number,
                        birth_rank=birth_rank,
                        attempts=seen.attempts,
                        channels=frozenset(seen.attempt_channels),
                    )
                )
        order = lambda p: (p.member_number, p.birth_rank, str(p.beneficiary_id))  # noqa: E731
        result.append(
            InsurerFacts(
                insurer_id=insurer_id,
                amc_number=insurer.amc_number,
                insurer_name=insurer.name,
                disclosed=tuple(sorted(disclosed, key=order)),
                attempted=tuple(sorted(attempted, key=order)),
                records=records,
                unattributed_attempts=unattributed.get(insurer_id, 0),
            )
        )
    return tuple(sorted(result, key=lambda i: i.amc_number))


def cards_of(
    session: Session, insurer_id: uuid.UUID, beneficiary_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, int]]:
    """Member number and birth rank: how the insurer finds each person in its own files."""
    found: dict[uuid.UUID, tuple[str, int]] = {}
    with tenant(session, insurer_id):
        for start in range(0, len(beneficiary_ids), 500):
            chunk = beneficiary_ids[start : start + 500]
            rows = session.execute(
                select(Beneficiary.id, Contract.member_number, Beneficiary.birth_rank)
                .join(
                    Contract,
                    and_(Contract.insurer_id == Beneficiary.insurer_id, Contract.id == Beneficiary.contract_id),
                )
                .where(Beneficiary.insurer_id == insurer_id, Beneficiary.id.in_(chunk))
            )
            found.update({b: (m, r) for b, m, r in rows})
    return found
