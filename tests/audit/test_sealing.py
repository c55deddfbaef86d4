"""The canonical encoding, the sealer's turn-taking, inclusion proofs and the ``rempart audit`` CLI."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from typer.testing import CliRunner

from rempart.audit.canonical import batch_bytes, parse_event, render_event, split_batch
from rempart.audit.disclosures import Operation
from rempart.audit.keys import LocalSigningKeys, PublicKeys
from rempart.audit.models import AccessEvent, ActorKind, Channel, Outcome
from rempart.audit.proofs import check_proof, prove_inclusion
from rempart.audit.sealing import seal_pending
from rempart.audit.service import Actor, access_event_row, record_access
from rempart.cli import app as cli
from rempart.runtime import Runtime
from tests.audit.conftest import T0, record_events, seal

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)


def _rendered(runtime: Runtime) -> list[tuple[str, str]]:
    """Each row's encoding by the database, next to the reference encoding of its ORM values."""
    with runtime.sessions.begin() as session:
        events = session.scalars(select(AccessEvent).order_by(AccessEvent.id)).all()
        for seq, event in enumerate(events):
            event.seal_seq = 1000 + seq
        session.flush()
        lines = split_batch(batch_bytes(session.connection(), 1000, 1000 + len(events)))
        return [
            (line.decode(), render_event({c.name: getattr(event, c.name) for c in AccessEvent.__table__.columns}))
            for (_seq, line), event in zip(lines, events, strict=True)
        ]


def test_the_database_renders_events_exactly_as_the_reference_encoding(runtime: Runtime) -> None:
    odd = Actor(ActorKind.PROFESSIONAL, id=uuid.uuid4(), profession="5:x-")
    with runtime.sessions.begin() as session:
        record_access(
            session,
            operation=Operation.BACKOFFICE_MEMBER_VIEW,
            actor=odd,
            channel=Channel.BACKOFFICE,
            outcome=Outcome.DISCLOSED,
            insurer_id=uuid.uuid4(),
            beneficiary_id=uuid.uuid4(),
            device="Mozilla/5.0 (été; ümlaut 🙂) -:-",
            address="\\N",  # a value that looks like NULL must not read as one
            reference="",
            occurred_at=datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC),
        )
        record_access(
            session,
            operation=Operation.PAYMENT_RUN,
            actor=Actor(ActorKind.SYSTEM),
            channel=Channel.BATCH,
            outcome=Outcome.ERROR,
        )
    record_events(runtime, 3)
    rendered = _rendered(runtime)
    for sql, reference in rendered:
        assert sql == reference
        assert parse_event(reference)["device"] in {
            None,
            "Mozilla/5.0 (été; ümlaut 🙂) -:-",
            *(f"LGPI/{i}" for i in range(3)),
        }
    assert parse_event(rendered[0][0])["address"] == "\\N"  # a text, not a NULL
    assert parse_event(rendered[1][0])["address"] is None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(device=_text, reference=_text, micro=st.integers(0, 999_999))
@example(device="", reference="\x01", micro=0)  # a value that is SOH alone once read as NULL on SQLite
def test_any_text_renders_the_same_in_sql_and_python(runtime: Runtime, device: str, reference: str, micro: int) -> None:
    with runtime.sessions.begin() as session:
        session.execute(text("DELETE FROM access_events"))
        row = access_event_row(
            operation=Operation.QUOTE,
            actor=Actor(ActorKind.PRACTICE_SOFTWARE, id=uuid.uuid4()),
            channel=Channel.PRO_API,
            outcome=Outcome.REFUSED,
            occurred_at=datetime(2026, 3, 29, 1, 59, 59, micro, tzinfo=UTC),
        )
        # Straight into the table, as someone editing the database would: no cleaning.
        session.execute(AccessEvent.__table__.insert(), row | {"device": device, "reference": reference})
    [(sql, reference_encoding)] = _rendered(runtime)
    assert sql == reference_encoding


def test_only_one_sealer_works_at_a_time(runtime: Runtime, signer: LocalSigningKeys) -> None:
    record_events(runtime, 30)
    with runtime.sessions.begin() as session:  # one checkpoint, the sealer's row in place
        assert seal_pending(session, signer=signer, now=T0, max_batch=1) is not None
    if runtime.engine.dialect.name == "postgresql":
        # A sealer holding its turn makes the others skip theirs instead of waiting.
        with runtime.sessions.begin() as holder:
            assert seal_pending(holder, signer=signer, now=T0, max_batch=5) is not None
            with runtime.sessions.begin() as other:
                assert seal_pending(other, signer=signer, now=T0) is None
    errors: list[BaseException] = []

    def run() -> None:
        try:
            seal(runtime, signer, max_batch=4)
        except Exception as exc:  # noqa: BLE001  (collected and asserted below)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seal(runtime, signer, max_batch=4)  # whatever a thread skipped

    with runtime.sessions() as session:
        seqs = sorted(s for s in session.scalars(select(AccessEvent.seal_seq)).all() if s is not None)
    assert seqs == list(range(30))
    # SQLite may turn a concurrent sealer away with "database is locked"; nothing half-done remains.
    assert all("locked" in str(e) or "changed while sealing" in str(e) for e in errors), [repr(e)[:300] for e in errors]


def test_an_event_is_proved_in_its_checkpoint_and_in_later_ones(runtime: Runtime, signer: LocalSigningKeys) -> None:
    ids = record_events(runtime, 11)
    seal(runtime, signer, max_batch=3)  # checkpoints 1..4
    keys = signer.public_keys()
    with runtime.engine.connect() as conn:
        own = prove_inclusion(conn, event_id=ids[4], checkpoint=2)
        later = prove_inclusion(conn, event_id=ids[4])
        by_number = prove_inclusion(conn, seq=10, checkpoint=4)

    for proof, number in ((own, 2), (later, 4), (by_number, 4)):
        result = check_proof(proof, keys)
        assert result.ok, result.reason
        assert result.checkpoint == number
    assert check_proof(own, keys).event is not None
    assert check_proof(own, keys).event["event_id"] == str(ids[4])  # type: ignore[index]

    forged = own | {"event": own["event"].replace("chk_4", "chk_9")}
    assert not check_proof(forged, keys).ok
    stranger = LocalSigningKeys.from_document(LocalSigningKeys.new_document(signer.key_id))
    assert not check_proof(own, stranger.public_keys()).ok
    wrong_place = own | {"leaf_index": own["leaf_index"] + 1}
    assert not check_proof(wrong_place, keys).ok


def test_an_unsealed_event_has_no_proof_yet(runtime: Runtime) -> None:
    [event] = record_events(runtime, 1)
    with runtime.engine.connect() as conn, pytest.raises(Exception, match="not sealed yet"):
        prove_inclusion(conn, event_id=event)


def test_the_cli_verifies_proves_exports_and_names_tampering(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ring = LocalSigningKeys.new_document("audit-cli")
    monkeypatch.setenv("REMPART_AUDIT_SIGNING_KEYS", ring)
    db = ["--db", runtime.settings.database_url]
    runner = CliRunner()
    ids = record_events(runtime, 5, start=datetime.now(UTC) - timedelta(seconds=30))

    sealed = runner.invoke(cli, ["audit", "seal", "--once", *db])
    assert sealed.exit_code == 0, sealed.output
    clean = runner.invoke(cli, ["audit", "verify", *db])
    assert clean.exit_code == 0, clean.output
    assert "ok: 1 checkpoints, 5 sealed events" in clean.output

    proof_file = tmp_path / "proof.json"
    proved = runner.invoke(cli, ["audit", "verify", "--event", str(ids[2]), "--proof-out", str(proof_file), *db])
    assert proved.exit_code == 0, proved.output
    assert "is in checkpoint 1" in proved.output
    export_file = tmp_path / "witness.jsonl"
    exported = runner.invoke(cli, ["audit", "export", "--insurer", str(uuid.uuid4()), "--out", str(export_file), *db])
    assert exported.exit_code == 0, exported.output
    # A witness checks the proof with the exported public keys, away from Rempart's database.
    monkeypatch.delenv("REMPART_AUDIT_SIGNING_KEYS")
    checked = runner.invoke(cli, ["audit", "check-proof", str(proof_file), "--keys", str(export_file)])
    assert checked.exit_code == 0, checked.output
    assert PublicKeys.from_jwks(json.loads(export_file.read_text().splitlines()[0])["jwks"]).jwks()["keys"]
    monkeypatch.setenv("REMPART_AUDIT_SIGNING_KEYS", ring)

    victim = ids[3] if runtime.engine.dialect.name == "postgresql" else ids[3].hex
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE access_events SET address = '203.0.113.9' WHERE event_id = :e"), {"e": victim})
    tampered = runner.invoke(cli, ["audit", "verify", *db])
    assert tampered.exit_code == 1
    assert f"FIRST PROBLEM: edited: the event differs from what was sealed (event {ids[3]}, sealed #3" in (
        tampered.output
    )
    as_json = runner.invoke(cli, ["audit", "verify", "--json", "--witness", str(export_file), *db])
    assert json.loads(as_json.output)["ok"] is False


def test_the_app_seals_on_its_own_outside_tests(runtime: Runtime, signer: LocalSigningKeys) -> None:
    from fastapi.testclient import TestClient

    from rempart.app import create_app
    from rempart.runtime import Runtime as AppRuntime

    served = AppRuntime.build(
        runtime.settings.model_copy(
            update={
                "environment": "development",
                "audit_seal_interval_seconds": 0.05,
                "audit_signing_keys": LocalSigningKeys.new_document("audit-app"),
            }
        )
    )
    app = create_app(served)
    try:
        with TestClient(app):
            sealer = app.state.audit_sealer
            assert sealer is not None
            assert sealer.running
            record_events(runtime, 3, start=datetime.now(UTC))
            assert sealer.wait_rounds(2, timeout=30)
            with runtime.sessions() as session:
                assert sorted(session.scalars(select(AccessEvent.seal_seq)).all()) == [0, 1, 2]
        assert not sealer.running  # stopped with the app
        test_app = create_app(runtime)  # environment "test": no sealer thread behind the tests' back
        with TestClient(test_app):
            assert test_app.state.audit_sealer is None
    finally:
        served.close()
