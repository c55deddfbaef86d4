"""Helpers for the access log's tests: a signing key, events written through ``record_access``, and
the sealer run on demand with a controllable clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from rempart.audit.disclosures import Operation
from rempart.audit.keys import LocalSigningKeys
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.audit.sealing import seal_all
from rempart.audit.service import Actor, record_access
from rempart.runtime import Runtime

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
INSURER = uuid.UUID("00000000-0000-4000-8000-00000000a001")


@pytest.fixture
def signer() -> LocalSigningKeys:
    return LocalSigningKeys.from_document(LocalSigningKeys.new_document("audit-test-1"))


def pharmacy(practice: uuid.UUID | None = None) -> Actor:
    return Actor(
        ActorKind.PRACTICE_SOFTWARE,
        id=uuid.uuid4(),
        practice_id=practice or uuid.uuid4(),
        professional_id=uuid.uuid4(),
        profession="pharmacist",
    )


def record_events(
    runtime: Runtime,
    count: int,
    *,
    start: datetime = T0,
    actor: Actor | None = None,
    beneficiaries: list[uuid.UUID] | None = None,
    insurer_id: uuid.UUID = INSURER,
) -> list[uuid.UUID]:
    """``count`` rights checks a second apart, every third one a miss; returns their event ids."""
    actor = actor or pharmacy()
    ids = []
    with runtime.sessions.begin() as session:
        for i in range(count):
            miss = i % 3 == 2
            beneficiary = None if miss else (beneficiaries[i % len(beneficiaries)] if beneficiaries else uuid.uuid4())
            ids.append(
                record_access(
                    session,
                    operation=Operation.RIGHTS_CHECK,
                    actor=actor,
                    channel=Channel.PRO_API,
                    outcome=Outcome.MISS if miss else Outcome.DISCLOSED,
                    insurer_id=insurer_id,
                    beneficiary_id=beneficiary,
                    device=f"LGPI/{i}",
                    address=f"192.0.2.{i % 250 + 1}",
                    reference=f"chk_{i}",
                    occurred_at=start + timedelta(seconds=i),
                )
            )
    return ids


def seal(
    runtime: Runtime, signer: LocalSigningKeys, *, now: datetime | None = None, max_batch: int = 50_000
) -> list[int]:
    return seal_all(runtime.sessions, signer=signer, now=now or T0 + timedelta(minutes=2), max_batch=max_batch)


def refuse_event_writes(runtime: Runtime) -> None:
    """Make the events table refuse every insert (a trigger that raises), as a failing log would."""
    with runtime.engine.begin() as conn:
        if runtime.engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'events table is read-only'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON access_events FOR EACH ROW EXECUTE FUNCTION refuse_event()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON access_events "
                    "BEGIN SELECT RAISE(ABORT, 'events table is read-only'); END"
                )
            )


def allow_event_writes(runtime: Runtime) -> None:
    with runtime.engine.begin() as conn:
        if runtime.engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER refuse ON access_events"))
            conn.execute(text("DROP FUNCTION refuse_event()"))
        else:
            conn.execute(text("DROP TRIGGER refuse"))
