"""The content digest's compact formats: the sealer signs the database's native one, ``verify``
checks it in bulk, a value shifted into its neighbour still shows, and checkpoints sealed in another
format (the text of version 1 heads, or another database's format) still verify."""

from __future__ import annotations

import json
from datetime import timedelta
from hashlib import sha256

import pytest
from sqlalchemy import select, text

from rempart.audit.content import COPY_TEXT, PG_BINARY, SQLITE_JSON, SQLITE_LP, can_render, content_bytes, native_format
from rempart.audit.keys import LocalSigningKeys
from rempart.audit.models import Checkpoint
from rempart.audit.sealing import CheckpointHead, head_hash
from rempart.audit.verify import ProblemKind, verify_log
from rempart.runtime import Runtime
from tests.audit.conftest import T0, record_events, seal

NOW = T0 + timedelta(minutes=3)


def _heads(runtime: Runtime) -> list[CheckpointHead]:
    with runtime.sessions() as session:
        return [CheckpointHead.decode(h) for h in session.scalars(select(Checkpoint.head).order_by(Checkpoint.number))]


def test_the_sealer_signs_the_databases_native_format(runtime: Runtime, signer: LocalSigningKeys) -> None:
    record_events(runtime, 6)
    seal(runtime, signer, max_batch=4)

    expected = PG_BINARY if runtime.engine.dialect.name == "postgresql" else SQLITE_JSON
    assert {(h.v, h.content_format) for h in _heads(runtime)} == {(2, expected)}
    with runtime.engine.connect() as conn:
        assert native_format(conn) == expected
        # Every column of every event is in the stream: six events, each its own entry.
        stream = content_bytes(conn, expected, 0, 6)
    assert len(stream) > 6 * 16 * 3


def test_a_value_shifted_into_its_neighbour_is_caught(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = record_events(runtime, 3)
    seal(runtime, signer)
    victim = ids[0] if runtime.engine.dialect.name == "postgresql" else ids[0].hex
    with runtime.engine.begin() as conn:
        device, address = conn.execute(
            text("SELECT device, address FROM access_events WHERE event_id = :e"), {"e": victim}
        ).one()
        # Same characters end to end, split differently between the two columns.
        conn.execute(
            text("UPDATE access_events SET device = :d, address = :a WHERE event_id = :e"),
            {"d": device + address[:3], "a": address[3:], "e": victim},
        )

    problems = verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).problems

    assert [(p.kind, p.event_id) for p in problems] == [(ProblemKind.EDITED, str(ids[0]))]


def test_a_batch_that_lost_or_gained_an_event_is_named_alone(runtime: Runtime, signer: LocalSigningKeys) -> None:
    """Batches read in one pass are cut by counting events: an event too few or too many shifts
    every later cut, yet only the batch that changed is reported."""
    ids = record_events(runtime, 12)
    seal(runtime, signer, max_batch=3)  # checkpoints 1 to 4, read in one pass
    postgres = runtime.engine.dialect.name == "postgresql"
    with runtime.engine.begin() as conn:
        seqs = dict(conn.execute(text("SELECT event_id, seal_seq FROM access_events")).all())
        victim = ids[1] if postgres else ids[1].hex
        conn.execute(text("DELETE FROM access_events WHERE event_id = :e"), {"e": victim})
        if postgres:  # a second row under checkpoint 3's last number (SQLite's unique index refuses it)
            conn.execute(
                text(
                    "INSERT INTO access_events (event_id, occurred_at, operation, purpose, actor_kind, channel, "
                    "fields, outcome, seal_seq) SELECT gen_random_uuid(), occurred_at, operation, purpose, "
                    "actor_kind, channel, fields, outcome, seal_seq FROM access_events WHERE seal_seq = 8"
                )
            )

    problems = verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).problems

    victim_seq = seqs[ids[1] if postgres else ids[1].hex]
    expected = [(ProblemKind.DELETED, 1, victim_seq)] + ([(ProblemKind.INSERTED, 3, 8)] if postgres else [])
    assert [(p.kind, p.checkpoint, p.seq) for p in problems] == expected


def _reseal_as(runtime: Runtime, signer: LocalSigningKeys, content_format: str, version: int) -> None:
    """Rewrite every head (signed again by the same key) as if sealed in another content format."""
    with runtime.sessions.begin() as session:
        checkpoints = session.scalars(select(Checkpoint).order_by(Checkpoint.number)).all()
        previous = bytes(32)
        for checkpoint in checkpoints:
            fields = json.loads(checkpoint.head)
            fields["v"] = version
            fields["prev"] = previous.hex()
            if version == 1:
                fields.pop("content_format")
            else:
                fields["content_format"] = content_format
            if can_render(session.connection(), content_format):
                data = content_bytes(
                    session.connection(), content_format, checkpoint.first_seq, checkpoint.first_seq + checkpoint.count
                )
                fields["content"] = sha256(data).hexdigest()
            head = CheckpointHead.decode(json.dumps(fields, sort_keys=True, separators=(",", ":")))
            checkpoint.head = head.encode()
            checkpoint.head_hash = head_hash(checkpoint.head)
            checkpoint.signature = signer.sign(checkpoint.head.encode())
            previous = checkpoint.head_hash


def test_version_1_heads_over_the_text_still_verify_and_name_an_edit(
    runtime: Runtime, signer: LocalSigningKeys
) -> None:
    ids = record_events(runtime, 7)
    seal(runtime, signer, max_batch=3)
    _reseal_as(runtime, signer, COPY_TEXT, version=1)
    assert {(h.v, h.content_format) for h in _heads(runtime)} == {(1, COPY_TEXT)}
    assert verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).ok

    victim = ids[4] if runtime.engine.dialect.name == "postgresql" else ids[4].hex
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE access_events SET reference = 'x' WHERE event_id = :e"), {"e": victim})
    problems = verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).problems
    assert [(p.kind, p.event_id) for p in problems] == [(ProblemKind.EDITED, str(ids[4]))]


def test_another_databases_format_is_checked_through_the_leaves(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = record_events(runtime, 5)
    seal(runtime, signer, max_batch=2)
    foreign = SQLITE_LP if runtime.engine.dialect.name == "postgresql" else PG_BINARY
    _reseal_as(runtime, signer, foreign, version=2)
    assert verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).ok

    victim = ids[2] if runtime.engine.dialect.name == "postgresql" else ids[2].hex
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE access_events SET device = 'x' WHERE event_id = :e"), {"e": victim})
    problems = verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).problems
    assert [(p.kind, p.event_id) for p in problems] == [(ProblemKind.EDITED, str(ids[2]))]


def test_a_version_2_head_must_name_its_format(runtime: Runtime, signer: LocalSigningKeys) -> None:
    record_events(runtime, 2)
    seal(runtime, signer)
    with runtime.sessions() as session:
        fields = json.loads(session.scalars(select(Checkpoint.head)).one())
    fields.pop("content_format")
    with pytest.raises(ValueError, match="canonical"):
        CheckpointHead.decode(json.dumps(fields, sort_keys=True, separators=(",", ":")))


def _sqlite_only(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's content formats")


def test_sqlite_lp_heads_still_verify_and_name_an_edit(runtime: Runtime, signer: LocalSigningKeys) -> None:
    """Checkpoints sealed before ``sqlite-json`` (the sealer signed ``sqlite-lp`` then)."""
    _sqlite_only(runtime)
    ids = record_events(runtime, 7)
    seal(runtime, signer, max_batch=3)
    _reseal_as(runtime, signer, SQLITE_LP, version=2)
    assert {(h.v, h.content_format) for h in _heads(runtime)} == {(2, SQLITE_LP)}
    assert verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).ok

    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE access_events SET reference = 'x' WHERE event_id = :e"), {"e": ids[5].hex})
    problems = verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).problems
    assert [(p.kind, p.event_id) for p in problems] == [(ProblemKind.EDITED, str(ids[5]))]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        # A tail after a NUL: printf and length() stop at the NUL, JSON escapes it.
        ("reference", "'chk_2' || char(0) || 'forged'"),
        # An empty text where NULL was (a miss names no beneficiary), and NULL where text was.
        ("beneficiary_id", "''"),
        ("device", "NULL"),
    ],
)
def test_sqlite_json_names_edits_that_keep_the_printed_text(
    runtime: Runtime, signer: LocalSigningKeys, column: str, value: str
) -> None:
    _sqlite_only(runtime)
    ids = record_events(runtime, 3)
    seal(runtime, signer)
    with runtime.engine.begin() as conn:
        conn.execute(
            text(f"UPDATE access_events SET {column} = {value} WHERE event_id = :e"),
            {"e": ids[2].hex},
        )

    problems = verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).problems

    assert [(p.kind, p.event_id) for p in problems] == [(ProblemKind.EDITED, str(ids[2]))]


def test_a_blob_value_is_named_not_a_crash(runtime: Runtime, signer: LocalSigningKeys) -> None:
    """SQLite will not write a BLOB as JSON: verify names the event instead of failing."""
    _sqlite_only(runtime)
    ids = record_events(runtime, 4)
    seal(runtime, signer, max_batch=2)
    with runtime.engine.begin() as conn:
        conn.execute(
            text("UPDATE access_events SET device = CAST(device AS BLOB) WHERE event_id = :e"), {"e": ids[3].hex}
        )

    problems = verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).problems

    # The same bytes, as a blob: the canonical text (the leaves) reads them alike, the JSON cannot.
    assert [(p.kind, p.event_id) for p in problems] == [(ProblemKind.EDITED, str(ids[3]))]
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE access_events SET device = X'00ff' WHERE event_id = :e"), {"e": ids[3].hex})
    problems = verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).problems
    assert [(p.kind, p.event_id) for p in problems] == [(ProblemKind.EDITED, str(ids[3]))]


def test_a_batch_json_cannot_hold_is_signed_as_sqlite_lp(runtime: Runtime, signer: LocalSigningKeys) -> None:
    """An event written from outside the application with a BLOB value, before the sealer ran."""
    _sqlite_only(runtime)
    ids = record_events(runtime, 5)
    with runtime.engine.begin() as conn:
        conn.execute(
            text("UPDATE access_events SET device = CAST(device AS BLOB) WHERE event_id = :e"), {"e": ids[1].hex}
        )
    seal(runtime, signer, max_batch=2)

    assert [h.content_format for h in _heads(runtime)] == [SQLITE_LP, SQLITE_JSON, SQLITE_JSON]
    assert verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).ok
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE access_events SET device = 'x' WHERE event_id = :e"), {"e": ids[1].hex})
    problems = verify_log(runtime.engine, keys=signer.public_keys(), now=NOW).problems
    assert [(p.kind, p.event_id) for p in problems] == [(ProblemKind.EDITED, str(ids[1]))]
