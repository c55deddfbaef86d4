"""Proofs without scanning: an event found by id through its index, consistency between two
checkpoints (RFC 9162), and a rewritten history that no longer extends what a witness kept."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text
from typer.testing import CliRunner

from rempart.audit.keys import LocalSigningKeys
from rempart.audit.models import AccessEvent, Checkpoint
from rempart.audit.proofs import check_consistency, check_proof, prove_consistency, prove_inclusion
from rempart.audit.service import new_event_id
from rempart.cli import app as cli
from rempart.runtime import Runtime
from tests.audit.conftest import T0, record_events, seal


def _kept_heads(runtime: Runtime) -> dict[int, tuple[str, bytes]]:
    with runtime.sessions() as session:
        rows = session.execute(select(Checkpoint.number, Checkpoint.head, Checkpoint.signature)).all()
    return {number: (head, bytes(signature)) for number, head, signature in rows}


def test_consistency_holds_between_every_pair_of_honest_checkpoints(runtime: Runtime, signer: LocalSigningKeys) -> None:
    record_events(runtime, 11)
    assert seal(runtime, signer, max_batch=2) == [1, 2, 3, 4, 5, 6]
    keys = signer.public_keys()
    with runtime.engine.connect() as conn:
        for old in range(1, 7):
            for new in range(old, 7):
                result = check_consistency(prove_consistency(conn, old=old, new=new), keys)
                assert result.ok, (old, new, result.reason)


def test_a_rewritten_history_does_not_extend_the_head_a_witness_kept(
    runtime: Runtime, signer: LocalSigningKeys
) -> None:
    ids = record_events(runtime, 6)
    seal(runtime, signer, max_batch=2)
    kept_head, kept_signature = _kept_heads(runtime)[2]
    # Someone with the database and the signing key edits an event of checkpoint 1 and seals again.
    victim = ids[0] if runtime.engine.dialect.name == "postgresql" else ids[0].hex
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE access_events SET reference = 'x' WHERE event_id = :e"), {"e": victim})
        conn.execute(text("UPDATE access_events SET seal_seq = NULL"))
        conn.execute(text("DELETE FROM audit_checkpoints"))
    seal(runtime, signer, max_batch=2)
    keys = signer.public_keys()
    with runtime.engine.connect() as conn:
        proof = prove_consistency(conn, old=2, new=3)

    assert check_consistency(proof, keys).ok  # consistent with its own rewritten past...
    refused = check_consistency(proof, keys, old_head=kept_head)
    assert (refused.ok, refused.reason) == (False, "the proof starts from another head than the one kept")
    # ... and no path can link the rewritten head to the kept one.
    proof["old_head"], proof["old_signature"] = kept_head, base64.b64encode(kept_signature).decode()
    assert check_consistency(proof, keys, old_head=kept_head).reason == "checkpoint 3 does not extend checkpoint 2"


def test_an_event_is_found_by_id_through_its_index(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = record_events(runtime, 9)
    seal(runtime, signer, max_batch=4)
    with runtime.engine.connect() as conn:
        proof = prove_inclusion(conn, event_id=ids[5])
        assert check_proof(proof, signer.public_keys()).ok
        param = ids[5] if runtime.engine.dialect.name == "postgresql" else ids[5].hex
        # As ``prove_inclusion`` asks it (on SQLite the index holds sealed events only).
        lookup = "SELECT seal_seq FROM access_events WHERE event_id = :e AND seal_seq IS NOT NULL"
        if runtime.engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {lookup}"), {"e": param}))
        else:
            plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {lookup}"), {"e": param}))
    assert "ix_access_events_event_id" in plan or "event_id_idx" in plan, plan


def test_event_ids_are_time_ordered() -> None:
    earlier, later = new_event_id(T0), new_event_id(T0 + timedelta(milliseconds=2))
    assert (earlier.version, later.version) == (7, 7)
    assert earlier < later


def test_the_cli_proves_consistency_and_checks_the_witness_copy(
    runtime: Runtime, signer: LocalSigningKeys, tmp_path: Path
) -> None:
    record_events(runtime, 5)
    seal(runtime, signer, max_batch=2)
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(signer.public_keys().jwks()))
    witness = tmp_path / "witness.jsonl"
    witness.write_text("\n".join(json.dumps({"head": h}) for h, _s in _kept_heads(runtime).values()))
    url = runtime.engine.url.render_as_string(hide_password=False)

    runner = CliRunner()
    options = ["--keys", str(keys_file), "--witness", str(witness), "--db", url]
    ok = runner.invoke(cli, ["audit", "consistency", "--from", "1", "--to", "3", *options])
    assert ok.exit_code == 0, ok.output
    assert "checkpoint 3 extends checkpoint 1" in ok.output
    witness.write_text(json.dumps({"head": _kept_heads(runtime)[1][0].replace('"count":2', '"count":3')}))
    bad = runner.invoke(cli, ["audit", "consistency", "--from", "1", *options])
    assert bad.exit_code == 1


def test_sealed_event_rows_hold_the_index_name(runtime: Runtime) -> None:
    indexes = {i.name for i in AccessEvent.__table__.indexes}
    assert {"ix_access_events_event_id", "ix_access_events_import_job"} <= indexes
