"""Request and response bodies of the access log's routes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from rempart.audit.access_log import AccessEntry, Page
from rempart.audit.breakglass import MAX_MINUTES, BeneficiaryIdentity
from rempart.audit.models import BreakGlassGrant, BreakGlassStatus
from rempart.fields import OneLine, Written


class WhoOut(BaseModel):
    kind: str
    label: str
    profession: str | None = None


class BreakGlassNoteOut(BaseModel):
    """What the person sees of a break-glass access."""

    ticket: str
    reason: str
    approved_by_second_operator: bool = True


class BreakGlassDetailOut(BreakGlassNoteOut):
    """What the insurer sees of it: the two operators too."""

    grant_id: uuid.UUID
    requested_by: uuid.UUID
    approved_by: uuid.UUID | None
    requested_at: datetime
    expires_at: datetime | None


class AccessOut(BaseModel):
    event_id: uuid.UUID
    at: datetime
    who: WhoOut
    why: str
    purpose: str
    what: list[str]
    fields: list[str]
    outcome: str
    outcome_label: str
    channel: str
    break_glass: BreakGlassNoteOut | None = None


class InsurerAccessOut(AccessOut):
    operation: str
    actor_kind: str
    actor_id: uuid.UUID | None
    practice_id: uuid.UUID | None
    professional_id: uuid.UUID | None
    beneficiary_id: uuid.UUID | None
    address: str | None
    reference: str | None
    break_glass: BreakGlassDetailOut | None = None


class AccessLogOut(BaseModel):
    """A page of the log, newest first; ``next`` (also the ``Link`` header) on every page but the last."""

    accesses: list[AccessOut]
    next_cursor: str | None  # the cursor alone, as before ``next``: the ``cursor`` of ``next``
    next: str | None = None


class InsurerAccessLogOut(BaseModel):
    """A page of the log, newest first; ``next`` (also the ``Link`` header) on every page but the last."""

    accesses: list[InsurerAccessOut]
    next_cursor: str | None  # the cursor alone, as before ``next``: the ``cursor`` of ``next``
    next: str | None = None


def _common(entry: AccessEntry) -> dict[str, object]:
    return {
        "event_id": entry.event_id,
        "at": entry.at,
        "who": WhoOut(kind=entry.who.kind, label=entry.who.label, profession=entry.who.profession),
        "why": entry.why,
        "purpose": entry.purpose.value,
        "what": entry.what,
        "fields": [f.value for f in entry.fields],
        "outcome": entry.outcome.value,
        "outcome_label": entry.outcome_label,
        "channel": entry.channel.value,
    }


def access_log_out(page: Page, link: str | None) -> AccessLogOut:
    return AccessLogOut(
        accesses=[
            AccessOut(
                **_common(e),
                break_glass=BreakGlassNoteOut(ticket=e.break_glass.ticket, reason=e.break_glass.reason)
                if e.break_glass
                else None,
            )
            for e in page.entries
        ],
        next_cursor=page.next_cursor,
        next=link,
    )


def insurer_access_log_out(page: Page, link: str | None) -> InsurerAccessLogOut:
    out = []
    for e in page.entries:
        glass = e.break_glass
        out.append(
            InsurerAccessOut(
                **_common(e),
                operation=e.operation or "",
                actor_kind=e.actor_kind.value if e.actor_kind else "",
                actor_id=e.actor_id,
                practice_id=e.practice_id,
                professional_id=e.professional_id,
                beneficiary_id=e.beneficiary_id,
                address=e.address,
                reference=e.reference,
                break_glass=BreakGlassDetailOut(
                    ticket=glass.ticket,
                    reason=glass.reason,
                    grant_id=glass.grant_id,
                    requested_by=glass.requested_by,
                    approved_by=glass.approved_by,
                    requested_at=glass.requested_at,
                    expires_at=glass.expires_at,
                )
                if glass
                else None,
            )
        )
    return InsurerAccessLogOut(accesses=out, next_cursor=page.next_cursor, next=link)


class StaffNamesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    show_staff_names: bool


class CheckpointHeadOut(BaseModel):
    number: int
    head: str
    signature: str


class WitnessOut(BaseModel):
    """Signed checkpoint heads for the insurer to keep, and the keys to check them."""

    log: str
    jwks: dict[str, object]
    heads: list[CheckpointHeadOut]


class ConsistencyProofOut(BaseModel):
    """RFC 9162 consistency proof: the newer signed head's log tree extends the older one's. Check it
    with ``merkle.verify_consistency`` over the two heads' numbers and ``log_root`` values."""

    v: int
    old_head: str
    old_signature: str
    new_head: str
    new_signature: str
    path: list[str]


class BreakGlassRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    insurer_id: uuid.UUID
    beneficiary_id: uuid.UUID
    reason: Annotated[str, Field(min_length=10, max_length=500), Written]
    # Also the reference of each opening's access event.
    ticket: Annotated[str, Field(min_length=1, max_length=64), OneLine]
    minutes: int = Field(default=30, ge=1, le=MAX_MINUTES)


class BreakGlassGrantOut(BaseModel):
    id: uuid.UUID
    insurer_id: uuid.UUID
    beneficiary_id: uuid.UUID
    status: BreakGlassStatus
    reason: str
    ticket: str
    requested_by: uuid.UUID
    requested_at: datetime
    duration_minutes: int
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, grant: BreakGlassGrant) -> BreakGlassGrantOut:
        return cls(
            id=grant.id,
            insurer_id=grant.insurer_id,
            beneficiary_id=grant.beneficiary_id,
            status=grant.status,
            reason=grant.reason,
            ticket=grant.ticket,
            requested_by=grant.requested_by,
            requested_at=grant.requested_at,
            duration_minutes=grant.duration_minutes,
            decided_by=grant.decided_by,
            decided_at=grant.decided_at,
            expires_at=grant.expires_at,
        )


class BeneficiaryIdentityOut(BaseModel):
    beneficiary_id: uuid.UUID
    insurer_id: uuid.UUID
    member_number: str
    nir: str
    last_name: str
    first_name: str
    birth_date: date
    birth_rank: int
    marital_status: str
    contract_start: date
    contract_end: date | None

    @classmethod
    def of(cls, identity: BeneficiaryIdentity) -> BeneficiaryIdentityOut:
        return cls(**identity.__dict__)
