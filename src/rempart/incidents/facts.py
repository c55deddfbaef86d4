"""What an incident's scope comes to, computed from the access log: per insurer (the controller),
who was seen, which of their data, through which channels, and who was only tried.

These are plain values: the documents (notice, Art. 33 notification, Art. 34 assessment and letters)
are drafted from them alone, and the same scope over the same log gives the same facts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from rempart.audit.disclosures import IDENTITY_FIELDS, DataField
from rempart.audit.models import Channel

# Data of GDPR Art. 9 (health): care lines say which care a person received.
HEALTH_FIELDS = frozenset({DataField.CARE_LINES})


@dataclass(frozen=True)
class ScopeSet:
    """One set of compromised actors over one window ``[since, until)``.

    ``actor_ids`` are accounts (professionals, insurer staff, operators) and API clients (a client's
    stolen key is scoped as its client); ``practice_ids`` take in everyone acting for the practice;
    ``professional_ids`` whoever acted for that professional (a shared account, their software)."""

    since: datetime
    until: datetime
    actor_ids: frozenset[uuid.UUID] = frozenset()
    practice_ids: frozenset[uuid.UUID] = frozenset()
    professional_ids: frozenset[uuid.UUID] = frozenset()
    label: str = ""

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise ValueError("a scope's window ends after it starts")
        if not (self.actor_ids or self.practice_ids or self.professional_ids):
            raise ValueError("a scope names at least one compromised actor, practice or professional")


@dataclass(frozen=True)
class PersonFacts:
    """One beneficiary whose data was disclosed to the scope's actors."""

    beneficiary_id: uuid.UUID
    member_number: str
    birth_rank: int
    fields: frozenset[DataField]
    channels: frozenset[Channel]
    records: int  # disclosing events
    first_seen: datetime
    last_seen: datetime

    @property
    def identity_seen(self) -> bool:
        return bool(self.fields & IDENTITY_FIELDS)

    @property
    def health_seen(self) -> bool:
        return bool(self.fields & HEALTH_FIELDS)


@dataclass(frozen=True)
class AttemptFacts:
    """A beneficiary the scope's actors tried (a miss or a refusal naming them) without disclosure."""

    beneficiary_id: uuid.UUID
    member_number: str
    birth_rank: int
    attempts: int
    channels: frozenset[Channel]


@dataclass(frozen=True)
class InsurerFacts:
    insurer_id: uuid.UUID
    amc_number: str
    insurer_name: str
    disclosed: tuple[PersonFacts, ...]  # by member number, then birth rank
    attempted: tuple[AttemptFacts, ...]  # tried, never disclosed
    records: int  # disclosing events, all people together
    # Misses that named nobody (a card or identity that matched no one): counted, not attributed.
    unattributed_attempts: int = 0

    @property
    def people(self) -> int:
        return len(self.disclosed)

    def people_per_field(self) -> dict[DataField, int]:
        counts: dict[DataField, int] = {}
        for person in self.disclosed:
            for item in person.fields:
                counts[item] = counts.get(item, 0) + 1
        return dict(sorted(counts.items()))

    def people_per_channel(self) -> dict[Channel, int]:
        counts: dict[Channel, int] = {}
        for person in self.disclosed:
            for channel in person.channels:
                counts[channel] = counts.get(channel, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def identity_seen(self) -> bool:
        return any(p.identity_seen for p in self.disclosed)

    @property
    def health_seen(self) -> bool:
        return any(p.health_seen for p in self.disclosed)


@dataclass(frozen=True)
class LogStatus:
    """``rempart audit verify`` over the scope's windows: the facts are only as good as the log."""

    verified: bool
    events_checked: int
    problem: str | None = None


@dataclass(frozen=True)
class ScopeFacts:
    sets: tuple[ScopeSet, ...]
    computed_at: datetime
    insurers: tuple[InsurerFacts, ...]  # by AMC number
    events_examined: int
    log: LogStatus | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def people(self) -> int:
        return sum(i.people for i in self.insurers)

    def of_insurer(self, insurer_id: uuid.UUID) -> InsurerFacts | None:
        return next((i for i in self.insurers if i.insurer_id == insurer_id), None)
