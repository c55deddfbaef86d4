"""Tamper evidence: edits, deletions, forged insertions and reorderings made directly in the database
are caught by ``verify``, which names the event; an untouched log verifies clean."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from rempart.audit import verify
from rempart.audit.keys import LocalSigningKeys, PublicKeys
from rempart.audit.models import AccessEvent, Checkpoint
from rempart.audit.sealing import CheckpointHead, head_hash
from rempart.audit.verify import ProblemKind, VerifyReport, verify_log
from rempart.audit.witness import check_heads, export_heads
from rempart.runtime import Runtime
from tests.audit.conftest import INSURER, T0, record_events, seal

NOW = T0 + timedelta(minutes=3)


def _verify(runtime: Runtime, signer: LocalSigningKeys, **kwargs: object) -> VerifyReport:
    return verify_log(runtime.engine, keys=signer.public_keys(), now=NOW, **kwargs)  # type: ignore[arg-type]


def _sealed_log(runtime: Runtime, signer: LocalSigningKeys, events: int = 12, batch: int = 5) -> list[uuid.UUID]:
    ids = record_events(runtime, events)
    seal(runtime, signer, max_batch=batch)
    return ids


def _seq_of(runtime: Runtime, event_id: uuid.UUID) -> int:
    with runtime.sessions() as session:
        seq = session.scalar(select(AccessEvent.seal_seq).where(AccessEvent.event_id == event_id))
    assert seq is not None
    return seq


def _sql(runtime: Runtime, statement: str, **params: object) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(text(statement), params)


def _uuid_param(runtime: Runtime, value: uuid.UUID) -> object:
    return value if runtime.engine.dialect.name == "postgresql" else value.hex


def test_the_sealer_numbers_events_without_gaps_and_signs_chained_heads(
    runtime: Runtime, signer: LocalSigningKeys
) -> None:
    record_events(runtime, 7)
    assert seal(runtime, signer, max_batch=3) == [1, 2, 3]
    with runtime.sessions() as session:
        seqs = sorted(session.scalars(select(AccessEvent.seal_seq)).all())
        checkpoints = session.scalars(select(Checkpoint).order_by(Checkpoint.number)).all()
    assert seqs == list(range(7))
    assert [(c.first_seq, c.count) for c in checkpoints] == [(0, 3), (3, 3), (6, 1)]
    keys = signer.public_keys()
    previous = bytes(32)
    for checkpoint in checkpoints:
        head = CheckpointHead.decode(checkpoint.head)
        assert keys.verify(head.key_id, checkpoint.signature, checkpoint.head.encode())
        assert bytes.fromhex(head.prev) == previous
        previous = head_hash(checkpoint.head)
    # Nothing left to seal: no empty checkpoint.
    assert seal(runtime, signer) == []


def test_an_untouched_log_verifies_clean(runtime: Runtime, signer: LocalSigningKeys) -> None:
    _sealed_log(runtime, signer)
    record_events(runtime, 2, start=NOW - timedelta(seconds=30))  # recent, not sealed yet: fine

    for deep in (False, True):
        report = _verify(runtime, signer, deep=deep)
        assert report.ok, [p.describe() for p in report.problems]
        assert (report.checkpoints, report.events, report.pending) == (3, 12, 2)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("practice_id", uuid.UUID("00000000-0000-4000-8000-0000000000ff")),
        ("reference", "chk_innocent"),
        ("outcome", "miss"),
    ],
)
def test_an_edited_field_is_named(runtime: Runtime, signer: LocalSigningKeys, column: str, value: object) -> None:
    ids = _sealed_log(runtime, signer)
    victim = ids[6]
    if column == "outcome":
        _sql(
            runtime,
            "UPDATE access_events SET outcome = 'miss', fields = '' WHERE event_id = :e",
            e=_uuid_param(runtime, victim),
        )
    else:
        param = _uuid_param(runtime, value) if isinstance(value, uuid.UUID) else value
        _sql(
            runtime,
            f"UPDATE access_events SET {column} = :v WHERE event_id = :e",
            v=param,
            e=_uuid_param(runtime, victim),
        )

    report = _verify(runtime, signer)

    assert [p.kind for p in report.problems] == [ProblemKind.EDITED]
    assert report.problems[0].event_id == str(victim)
    assert report.problems[0].seq == _seq_of(runtime, victim)
    assert report.problems[0].checkpoint == 2


def test_an_edited_time_is_named(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = _sealed_log(runtime, signer)
    _sql(
        runtime,
        "UPDATE access_events SET occurred_at = :t WHERE event_id = :e",
        t=T0 - timedelta(days=40),
        e=_uuid_param(runtime, ids[0]),
    )

    problems = _verify(runtime, signer).problems

    assert [(p.kind, p.event_id) for p in problems] == [(ProblemKind.EDITED, str(ids[0]))]


def test_a_deleted_event_is_named_by_its_sealed_number(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = _sealed_log(runtime, signer)
    seq = _seq_of(runtime, ids[10])
    _sql(runtime, "DELETE FROM access_events WHERE event_id = :e", e=_uuid_param(runtime, ids[10]))

    problems = _verify(runtime, signer).problems

    assert [(p.kind, p.seq, p.checkpoint) for p in problems] == [(ProblemKind.DELETED, seq, 3)]


def _forge_copy(runtime: Runtime, source: uuid.UUID, forged: uuid.UUID, seal_seq: int | None, when: object) -> None:
    columns = [
        c.name
        for c in AccessEvent.__table__.columns
        if c.name not in {"id", "event_id", "seal_seq", "occurred_at", "beneficiary_id"}
    ]
    listed = ", ".join(columns)
    _sql(
        runtime,
        f"INSERT INTO access_events (event_id, seal_seq, occurred_at, beneficiary_id, {listed}) "
        f"SELECT :forged, :seq, :when, :beneficiary, {listed} FROM access_events WHERE event_id = :source",
        forged=_uuid_param(runtime, forged),
        seq=seal_seq,
        when=when,
        beneficiary=_uuid_param(runtime, uuid.uuid4()),
        source=_uuid_param(runtime, source),
    )


def test_a_forged_event_is_named_wherever_it_is_slipped_in(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = _sealed_log(runtime, signer)
    under_sealed_number, beyond_last, never_sealed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    if runtime.engine.dialect.name == "postgresql":
        # SQLite's unique index on seal_seq refuses a second row under a number; PostgreSQL cannot
        # have that index on a partitioned table, so this one only needs verify.
        _forge_copy(runtime, ids[3], under_sealed_number, _seq_of(runtime, ids[3]), T0 + timedelta(seconds=3))
    _forge_copy(runtime, ids[4], beyond_last, 12, T0 + timedelta(seconds=20))
    # Backdated and left for the sealer: older than any pending event can legitimately be.
    _forge_copy(runtime, ids[5], never_sealed, None, T0 - timedelta(days=3))

    problems = _verify(runtime, signer).problems

    named = {(p.kind, p.event_id) for p in problems}
    expected = {(ProblemKind.INSERTED, str(beyond_last)), (ProblemKind.UNSEALED, str(never_sealed))}
    if runtime.engine.dialect.name == "postgresql":
        expected.add((ProblemKind.INSERTED, str(under_sealed_number)))
    assert named == expected


def test_swapped_events_are_named(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = _sealed_log(runtime, signer)
    a, b = _seq_of(runtime, ids[1]), _seq_of(runtime, ids[2])
    # Through a free number: SQLite keeps sealed numbers unique.
    _sql(runtime, "UPDATE access_events SET seal_seq = 1000000 WHERE seal_seq = :a", a=a)
    _sql(runtime, "UPDATE access_events SET seal_seq = :a WHERE seal_seq = :b", a=a, b=b)
    _sql(runtime, "UPDATE access_events SET seal_seq = :b WHERE seal_seq = 1000000", b=b)

    problems = _verify(runtime, signer).problems

    assert sorted((p.kind, p.event_id, p.seq) for p in problems) == sorted(
        [(ProblemKind.REORDERED, str(ids[1]), b), (ProblemKind.REORDERED, str(ids[2]), a)]
    )
    assert f"sealed as #{a}" in next(p.detail for p in problems if p.event_id == str(ids[1]))


def test_swapping_contents_between_rows_is_named_too(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = _sealed_log(runtime, signer)
    first, second = _uuid_param(runtime, ids[7]), _uuid_param(runtime, ids[8])
    parked = _uuid_param(runtime, uuid.uuid4())
    # Exchange the rows' identities and contents but leave the sealed numbers: a reordering.
    _sql(runtime, "UPDATE access_events SET event_id = :p WHERE event_id = :a", p=parked, a=first)
    _sql(runtime, "UPDATE access_events SET event_id = :a WHERE event_id = :b", a=first, b=second)
    _sql(runtime, "UPDATE access_events SET event_id = :b WHERE event_id = :p", b=second, p=parked)

    kinds = {p.kind for p in _verify(runtime, signer).problems}

    assert kinds == {ProblemKind.EDITED}  # each row now holds a mix no sealed event had


def test_a_removed_or_altered_checkpoint_is_named(runtime: Runtime, signer: LocalSigningKeys) -> None:
    _sealed_log(runtime, signer)
    _sql(runtime, "DELETE FROM audit_checkpoints WHERE number = 2")
    assert (ProblemKind.CHECKPOINT_MISSING, 2) in {(p.kind, p.checkpoint) for p in _verify(runtime, signer).problems}


def test_a_head_rewritten_without_the_key_fails_its_signature(runtime: Runtime, signer: LocalSigningKeys) -> None:
    _sealed_log(runtime, signer)
    with runtime.sessions.begin() as session:
        checkpoint = session.get(Checkpoint, 1)
        assert checkpoint is not None
        head = json.loads(checkpoint.head)
        head["count"] = 4
        checkpoint.head = json.dumps(head, sort_keys=True, separators=(",", ":"))

    problems = _verify(runtime, signer).problems

    assert (ProblemKind.BAD_SIGNATURE, 1) in {(p.kind, p.checkpoint) for p in problems}


def test_a_resealed_log_under_another_key_is_refused(runtime: Runtime, signer: LocalSigningKeys) -> None:
    record_events(runtime, 4)
    forger = LocalSigningKeys.from_document(LocalSigningKeys.new_document("audit-test-1"))
    seal(runtime, forger)
    assert {p.kind for p in _verify(runtime, signer).problems} == {ProblemKind.BAD_SIGNATURE}


def test_a_witness_catches_a_log_cut_short(runtime: Runtime, signer: LocalSigningKeys) -> None:
    _sealed_log(runtime, signer)
    with runtime.engine.connect() as conn:
        export = list(export_heads(conn, insurer_id=INSURER, since=1, keys=signer.public_keys()))
    assert check_heads(export, PublicKeys.from_jwks(export[0]["jwks"])) == []
    # Remove the last checkpoint and its events: consistent inside the database...
    _sql(runtime, "DELETE FROM access_events WHERE seal_seq >= 10")
    _sql(runtime, "DELETE FROM audit_checkpoints WHERE number = 3")
    assert _verify(runtime, signer).ok
    # ... but not with what the insurer kept.
    witness = [line["head"] for line in export[1:]]
    problems = _verify(runtime, signer, witness=witness).problems
    assert [(p.kind, p.checkpoint) for p in problems] == [(ProblemKind.TRUNCATED, 3)]


def test_since_starts_from_a_checkpoint(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = _sealed_log(runtime, signer)
    _sql(runtime, "UPDATE access_events SET reference = 'x' WHERE event_id = :e", e=_uuid_param(runtime, ids[0]))

    assert not _verify(runtime, signer).ok
    from_two = _verify(runtime, signer, since=2)
    assert from_two.ok
    assert (from_two.first_checkpoint, from_two.checkpoints, from_two.events) == (2, 2, 7)
    by_date = _verify(runtime, signer, since=T0 + timedelta(minutes=2))
    assert by_date.first_checkpoint == 1


def test_parallel_verify_finds_the_same(
    runtime: Runtime, signer: LocalSigningKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs of two checkpoints, so that this small log is shared between this process and two workers.
    monkeypatch.setattr(verify, "_GROUP_EVENTS", 8)
    ids = _sealed_log(runtime, signer, events=30, batch=4)
    assert _verify(runtime, signer, jobs=3).ok
    _sql(runtime, "DELETE FROM access_events WHERE event_id = :e", e=_uuid_param(runtime, ids[17]))
    _sql(runtime, "UPDATE access_events SET device = 'x' WHERE event_id = :e", e=_uuid_param(runtime, ids[3]))

    alone, parallel = _verify(runtime, signer), _verify(runtime, signer, jobs=3)

    assert (alone.processes, parallel.processes) == (1, 3)
    assert [p.describe() for p in parallel.problems] == [p.describe() for p in alone.problems]
    assert [p.kind for p in parallel.problems] == [ProblemKind.EDITED, ProblemKind.DELETED]


def test_the_unsealed_tail_is_checked_too(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = _sealed_log(runtime, signer)
    fresh = record_events(runtime, 2, start=NOW - timedelta(seconds=5))  # waiting for the next round
    late = record_events(runtime, 1, start=NOW - timedelta(minutes=2))  # the sealer missed it
    future, numbered = uuid.uuid4(), uuid.uuid4()
    _forge_copy(runtime, ids[1], future, None, NOW + timedelta(hours=1))  # forged time, never sealed
    _forge_copy(runtime, ids[2], numbered, 40, NOW - timedelta(seconds=1))  # forged sealed number

    report = _verify(runtime, signer)

    assert {(p.kind, p.event_id) for p in report.problems} == {
        (ProblemKind.UNSEALED, str(late[0])),
        (ProblemKind.INSERTED, str(future)),
        (ProblemKind.INSERTED, str(numbered)),
    }
    assert str(fresh[0]) not in {p.event_id for p in report.problems}
    assert report.pending == 4
