"""``rempart audit`` handed files that are not what they claim (a witness copy, a proof, public keys:
missing, truncated, not UTF-8, JSON of the wrong types or nested past the parser) or numbers no log
can have: a readable message and a non-zero exit, never a traceback. A witness file that holds no
JSON lines is refused, not read as a witness that kept nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from rempart.audit.keys import LocalSigningKeys
from rempart.audit.models import Checkpoint
from rempart.audit.proofs import prove_inclusion
from rempart.cli import app as cli
from rempart.runtime import Runtime
from tests.audit.conftest import record_events, seal

PAST_BIGINT = str(2**63)


def _canonical(head: dict[str, object]) -> str:
    return json.dumps(head, sort_keys=True, separators=(",", ":"))


def _refused(result: Result, says: str) -> None:
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a traceback
    assert result.exit_code != 0
    assert says in result.output, result.output


@pytest.fixture(autouse=True)
def _json_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI configures logging for the whole process: JSON, as the rest of the suite reads it."""
    monkeypatch.setenv("REMPART_LOG_JSON", "true")


@pytest.fixture
def sealed(runtime: Runtime, signer: LocalSigningKeys, tmp_path: Path) -> tuple[list[str], list[str]]:
    """Three checkpoints; the keys file and the database options the commands take, and the heads."""
    record_events(runtime, 5)
    seal(runtime, signer, max_batch=2)
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(signer.public_keys().jwks()))
    with runtime.sessions() as session:
        heads = list(session.scalars(select(Checkpoint.head).order_by(Checkpoint.number)))
    options = ["--keys", str(keys_file), "--db", runtime.engine.url.render_as_string(hide_password=False)]
    return options, heads


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "the witness file"),  # missing
        (b"\xff\xfe{}\n", "cannot be read"),  # not UTF-8
        (b'{"head": "{\\"batch_root', "line 1 of the witness file is not a JSON object"),  # truncated
        (b"[1, 2]\n", "line 1 of the witness file is not a JSON object"),
        (b'{"log": "rempart-access-log"}\n5\n', "line 2 of the witness file is not a JSON object"),
        (b'"head"\n', "line 1 of the witness file is not a JSON object"),
        (b"[" * 100_000 + b"\n", "line 1 of the witness file is not a JSON object"),
    ],
)
@pytest.mark.parametrize("command", [["consistency", "--from", "1"], ["verify"]])
def test_a_witness_file_that_is_not_json_lines_is_refused_in_words(
    sealed: tuple[list[str], list[str]], tmp_path: Path, content: bytes | None, says: str, command: list[str]
) -> None:
    options, _heads = sealed
    witness = tmp_path / "witness.jsonl"
    if content is not None:
        witness.write_bytes(content)

    _refused(CliRunner().invoke(cli, ["audit", *command, "--witness", str(witness), *options]), says)


@pytest.mark.parametrize(
    "head",
    [
        5,
        ["not", "a", "head"],
        "not a head",
        {"number": 1},
    ],
)
def test_a_witness_line_whose_head_is_not_one_of_this_log_is_named_and_left_out(
    sealed: tuple[list[str], list[str]], tmp_path: Path, head: object
) -> None:
    options, heads = sealed
    witness = tmp_path / "witness.jsonl"
    witness.write_text(json.dumps({"head": head}) + "\n" + json.dumps({"head": heads[0]}) + "\n")
    runner = CliRunner()

    kept = runner.invoke(cli, ["audit", "consistency", "--from", "1", "--witness", str(witness), *options])
    assert kept.exit_code == 0, kept.output
    assert "warning: line 1 of the witness file holds no checkpoint head of this log" in kept.output
    assert "checkpoint 3 extends checkpoint 1" in kept.output
    # The other head is not "kept": asking from it names what is missing.
    _refused(
        runner.invoke(cli, ["audit", "consistency", "--from", "2", "--witness", str(witness), *options]),
        "the witness file does not hold checkpoint 2",
    )


def test_a_witness_head_with_numbers_no_log_has_is_left_out(
    sealed: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    options, heads = sealed
    witness = tmp_path / "witness.jsonl"
    forged = [
        _canonical({**json.loads(heads[0]), "number": 2**64}),  # SQLite cannot even bind it
        _canonical({**json.loads(heads[0]), "number": "1"}),  # PostgreSQL: bigint = text
    ]
    witness.write_text("".join(json.dumps({"head": h}) + "\n" for h in forged))

    checked = CliRunner().invoke(cli, ["audit", "verify", "--witness", str(witness), *options])

    assert checked.exception is None or isinstance(checked.exception, SystemExit), repr(checked.exception)
    assert checked.output.count("holds no checkpoint head of this log") == 2


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"event": ["not", "text"]}, "the proof is malformed"),
        ({"head_key_id": ["kid"]}, "the proof is malformed"),
        ({"head_number": "3"}, "the proof is malformed"),
    ],
)
def test_a_proof_of_the_wrong_types_is_malformed_not_a_traceback(
    runtime: Runtime, sealed: tuple[list[str], list[str]], tmp_path: Path, change: dict[str, object], says: str
) -> None:
    options, _heads = sealed
    with runtime.engine.connect() as conn:
        proof = prove_inclusion(conn, seq=0)
    head = json.loads(proof["head"])
    for name, value in change.items():
        if name.startswith("head_"):
            proof["head"] = _canonical({**head, name.removeprefix("head_"): value})
        else:
            proof[name] = value
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(proof))

    _refused(CliRunner().invoke(cli, ["audit", "check-proof", str(proof_file), *options[:2]]), says)


def test_a_proof_nested_past_the_parser_or_missing_is_refused_in_words(
    sealed: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    options, _heads = sealed
    proof_file = tmp_path / "proof.json"
    runner = CliRunner()

    _refused(runner.invoke(cli, ["audit", "check-proof", str(proof_file), *options[:2]]), "cannot be read")
    proof_file.write_text("[" * 100_000)
    _refused(runner.invoke(cli, ["audit", "check-proof", str(proof_file), *options[:2]]), "the proof file is not JSON")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot be read"),
        ("[1]", "the keys file is neither a JWK set nor an export"),
        ('{"keys": 5}', "the keys file is neither a JWK set nor an export"),
        ('{"keys": [1]}', "not an Ed25519 public key"),
        ('{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": 5}]}', "not an Ed25519 public key"),
        ('{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": "AAAA"}]}', "not an Ed25519 public key"),
    ],
)
def test_a_keys_file_that_holds_no_public_keys_is_refused_in_words(
    runtime: Runtime, sealed: tuple[list[str], list[str]], tmp_path: Path, content: str | None, says: str
) -> None:
    _options, _heads = sealed
    with runtime.engine.connect() as conn:
        proof = prove_inclusion(conn, seq=0)
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(proof))
    keys_file = tmp_path / "other-keys.json"
    if content is not None:
        keys_file.write_text(content)

    _refused(CliRunner().invoke(cli, ["audit", "check-proof", str(proof_file), "--keys", str(keys_file)]), says)


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["consistency", "--from", "1", "--to", PAST_BIGINT], "--to"),
        (["consistency", "--from", PAST_BIGINT], "--from"),
        (["verify", "--since", PAST_BIGINT], "no checkpoint has a number past"),
        (["verify", "--event", "#" + PAST_BIGINT], "no such access event"),
        (["verify", "--event", "#0", "--checkpoint", PAST_BIGINT], "--checkpoint"),
        (["verify", "--event", "#-1"], "--event takes an event id or #sealed-number"),
    ],
)
def test_numbers_no_log_can_have_are_refused_in_words(
    sealed: tuple[list[str], list[str]], command: list[str], says: str
) -> None:
    options, _heads = sealed

    _refused(CliRunner().invoke(cli, ["audit", *command, *options]), says)


def test_an_export_to_a_folder_that_does_not_exist_is_refused_in_words(
    runtime: Runtime, sealed: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    db = ["--db", runtime.engine.url.render_as_string(hide_password=False)]
    insurer = ["--insurer", "00000000-0000-4000-8000-00000000a001"]
    runner = CliRunner()

    _refused(
        runner.invoke(cli, ["audit", "export", *insurer, "--out", str(tmp_path / "no" / "w.jsonl"), *db]),
        "cannot write",
    )
    _refused(
        runner.invoke(cli, ["audit", "export", *insurer, "--since", PAST_BIGINT, "--out", str(tmp_path / "w"), *db]),
        "--since",
    )
