"""The access log's side of the care flows (rights checks, quotes, approvals, claims, payments): who
acted, through which channel, on whom.

Every care operation records one event through ``rempart.audit.service.record_access`` in the same
transaction as its answer or its write; the registry in ``rempart.audit.disclosures`` says why and
which fields each operation discloses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from rempart.audit.disclosures import DataField, Operation
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.audit.service import Actor, record_access
from rempart.identity.principal import Channel as PrincipalChannel
from rempart.identity.principal import PracticePrincipal, StaffPrincipal


def practice_actor(caller: PracticePrincipal) -> Actor:
    software = caller.client_id is not None
    return Actor(
        ActorKind.PRACTICE_SOFTWARE if software else ActorKind.PROFESSIONAL,
        id=caller.client_id if software else caller.account_id,
        practice_id=caller.practice_id,
        professional_id=caller.professional_id,
        profession=caller.profession.value,
    )


# The professional's channel as the access log names it.
_ACCESS_CHANNEL = {
    PrincipalChannel.API: Channel.PRO_API,
    PrincipalChannel.FHIR: Channel.FHIR,
    PrincipalChannel.PORTAL: Channel.PRO_PORTAL,
}


def record_practice_access(
    session: Session,
    *,
    caller: PracticePrincipal,
    operation: Operation,
    outcome: Outcome,
    now: datetime,
    insurer_id: uuid.UUID | None = None,
    beneficiary_id: uuid.UUID | None = None,
    reference: uuid.UUID | str | None = None,
    fields: Iterable[DataField] | None = None,
) -> uuid.UUID:
    return record_access(
        session,
        operation=operation,
        actor=practice_actor(caller),
        channel=_ACCESS_CHANNEL[caller.channel],
        outcome=outcome,
        insurer_id=insurer_id,
        beneficiary_id=beneficiary_id,
        device=caller.credential_ref,
        address=caller.address,
        reference=str(reference) if reference is not None else None,
        fields=fields,
        occurred_at=now,
    )


def record_staff_access(
    session: Session,
    *,
    staff: StaffPrincipal,
    operation: Operation,
    outcome: Outcome,
    now: datetime,
    beneficiary_id: uuid.UUID | None = None,
    reference: uuid.UUID | str | None = None,
    channel: Channel = Channel.INSURER_API,
) -> uuid.UUID:
    return record_access(
        session,
        operation=operation,
        actor=Actor(ActorKind.INSURER_STAFF, id=staff.account_id),
        channel=channel,
        outcome=outcome,
        insurer_id=staff.insurer_id,
        beneficiary_id=beneficiary_id,
        device=staff.credential_ref,
        address=staff.address,
        reference=str(reference) if reference is not None else None,
        occurred_at=now,
    )
