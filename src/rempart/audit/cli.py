"""``rempart audit ...``: verify the access log, seal it, prove an event, export heads to witnesses."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from rempart.audit.keys import PublicKeys, load_signing_keys
from rempart.audit.proofs import MAX_NUMBER, checked_head
from rempart.audit.sealing import CheckpointHead
from rempart.cli_refusals import checked_database_url, database_problem, fail
from rempart.config import get_settings
from rempart.db import make_engine
from rempart.errors import RempartError

audit_app = typer.Typer(no_args_is_help=True, help="The access log: verify, seal, prove, export.")


@contextmanager
def _database(db: str) -> Iterator[Engine]:
    """The log's database (``--db``, default: the settings'), disposed of afterwards. A URL Rempart
    cannot use, or a database it cannot reach or read, is a readable refusal, not a traceback."""
    engine = make_engine(checked_database_url(db or get_settings().database_url))
    try:
        yield engine
    except SQLAlchemyError as exc:
        raise fail(database_problem(exc)) from None
    finally:
        engine.dispose()


def _parse_since(value: str) -> int | datetime | None:
    if not value:
        return None
    if value.isascii() and value.isdigit():
        if int(value) > MAX_NUMBER:
            raise fail(f"--since: no checkpoint has a number past {MAX_NUMBER}")
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail("--since takes a checkpoint number or an ISO date (2026-11-22 or 2026-11-22T10:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise fail(f"the {what} {path} cannot be read (missing, not a file, or not UTF-8 text)") from None


def _json(text: str) -> Any:
    """The JSON value of ``text``, or ``None`` when it is none (nesting past the parser included)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _read_witness(path: Path | None) -> list[str]:
    """The heads a witness file holds: JSON lines, objects, those with a ``head`` (an export's first
    line names the log and its keys). A file that is not such lines is refused, not read as empty;
    a line whose head is not one of this log's is left out with a warning."""
    if path is None:
        return []
    heads = []
    for number, line in enumerate(_read(path, "witness file").splitlines(), start=1):
        if not line.strip():
            continue
        item = _json(line)
        if not isinstance(item, dict):
            raise fail(f"line {number} of the witness file is not a JSON object")
        if "head" not in item:
            continue
        if _head(item["head"]) is None:
            typer.secho(f"warning: line {number} of the witness file holds no checkpoint head of this log", err=True)
        else:
            heads.append(item["head"])
    return heads


def _head(value: object) -> CheckpointHead | None:
    try:
        return checked_head(value)
    except ValueError:
        return None


def _public_keys(keys_file: Path | None) -> PublicKeys:
    if keys_file is not None:
        # A JWK set, or an export file whose first line carries one.
        content = _read(keys_file, "keys file").strip()
        document = _json(content)
        if document is None and content:
            document = _json(content.splitlines()[0])
        if isinstance(document, dict) and isinstance(document.get("jwks"), dict):
            document = document["jwks"]
        if not isinstance(document, dict) or not isinstance(document.get("keys", []), list):
            raise fail("the keys file is neither a JWK set nor an export")
        try:
            return PublicKeys.from_jwks(document)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise fail("the keys file holds a key that is not an Ed25519 public key (JWK 'OKP')") from None
    return load_signing_keys(get_settings()).public_keys()


def _prove(event: str, checkpoint: int, proof_out: Path | None, keys: PublicKeys, db: str) -> None:
    from rempart.audit.proofs import check_proof, prove_inclusion

    with _database(db) as engine, engine.connect() as conn:
        if event.startswith("#") and event[1:].isascii() and event[1:].isdigit():
            proof = prove_inclusion(conn, seq=int(event[1:]), checkpoint=checkpoint or None)
        else:
            try:
                event_id = uuid.UUID(event)
            except ValueError:
                raise fail("--event takes an event id or #sealed-number (#42)") from None
            proof = prove_inclusion(conn, event_id=event_id, checkpoint=checkpoint or None)
    result = check_proof(proof, keys)
    if proof_out is not None:
        proof_out.write_text(json.dumps(proof, indent=2))
    typer.echo(result.reason)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("verify")
def verify(  # noqa: PLR0917  (each Typer option is a parameter)
    since: str = typer.Option("", help="Start at this checkpoint number, or at the first sealed at/after a date"),
    deep: bool = typer.Option(False, help="Also recompute every leaf hash and batch Merkle root"),
    jobs: int = typer.Option(
        os.cpu_count() or 1,
        min=1,
        max=64,
        help="Processes streaming and hashing batches at once (default: one per core)",
    ),
    witness: Path | None = typer.Option(None, help="Heads exported earlier (rempart audit export): must be kept"),
    event: str = typer.Option("", help="Prove this event (id, or #sealed-number) is in a checkpoint"),
    checkpoint: int = typer.Option(
        0, min=0, max=MAX_NUMBER, help="With --event: the checkpoint to prove it in (default: the latest)"
    ),
    proof_out: Path | None = typer.Option(None, help="With --event: write the proof to this file"),
    keys_file: Path | None = typer.Option(None, "--keys", help="Public keys (JWKS) instead of the local key ring"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Recompute the sealed log and name the first edited, deleted, inserted or reordered event."""
    from rempart.audit.verify import report_dict, verify_log

    try:
        keys = _public_keys(keys_file)
        if event:
            _prove(event, checkpoint, proof_out, keys, db)
            return
        with _database(db) as engine:
            report = verify_log(
                engine, keys=keys, since=_parse_since(since), deep=deep, witness=_read_witness(witness), jobs=jobs
            )
    except RempartError as exc:
        raise fail(exc.detail) from None
    except ValueError as exc:
        raise fail(str(exc)) from None

    if as_json:
        typer.echo(json.dumps(report_dict(report), indent=2))
    else:
        for warning in report.warnings:
            typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
        if report.problems:
            typer.secho(f"FIRST PROBLEM: {report.problems[0].describe()}", fg=typer.colors.RED)
            for problem in report.problems[1:]:
                typer.echo(f"  also: {problem.describe()}")
        typer.echo(
            f"{'TAMPERED' if report.problems else 'ok'}: {report.checkpoints} checkpoints, {report.events} sealed "
            f"events checked in {report.seconds:.2f} s ({report.events_per_second:,.0f} events/s, "
            f"{report.processes} process{'es' if report.processes > 1 else ''}); "
            f"{report.pending} waiting to be sealed"
        )
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("check-proof")
def check_proof_command(
    proof_file: Path = typer.Argument(..., help="A proof written by rempart audit verify --event ... --proof-out"),
    keys_file: Path | None = typer.Option(None, "--keys", help="Public keys (JWKS or an export file)"),
) -> None:
    """Check an inclusion proof with the public keys only (what a witness does)."""
    from rempart.audit.proofs import check_proof

    proof = _json(_read(proof_file, "proof file"))
    if proof is None:
        raise fail("the proof file is not JSON")
    result = check_proof(proof, _public_keys(keys_file))
    typer.echo(result.reason)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("consistency")
def consistency(  # noqa: PLR0917  (each Typer option is a parameter)
    old: int = typer.Option(..., "--from", min=1, max=MAX_NUMBER, help="The earlier checkpoint (one a witness kept)"),
    new: int = typer.Option(0, "--to", min=0, max=MAX_NUMBER, help="The later checkpoint (default: the latest)"),
    witness: Path | None = typer.Option(None, help="Heads exported earlier: the --from head must be the one kept"),
    proof_out: Path | None = typer.Option(None, help="Write the proof to this file"),
    keys_file: Path | None = typer.Option(None, "--keys", help="Public keys (JWKS) instead of the local key ring"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Prove that a later checkpoint extends an earlier one (RFC 9162 consistency proof)."""
    from rempart.audit.proofs import check_consistency, prove_consistency

    kept = {CheckpointHead.decode(h).number: h for h in _read_witness(witness)}
    if witness is not None and old not in kept:
        raise fail(f"the witness file does not hold checkpoint {old}")
    try:
        keys = _public_keys(keys_file)
        with _database(db) as engine, engine.connect() as conn:
            proof = prove_consistency(conn, old=old, new=new or None)
    except RempartError as exc:
        raise fail(exc.detail) from None
    result = check_consistency(proof, keys, old_head=kept.get(old))
    if proof_out is not None:
        proof_out.write_text(json.dumps(proof, indent=2))
    typer.echo(result.reason)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("seal")
def seal(
    once: bool = typer.Option(False, help="Seal what is pending and exit"),
    interval: float = typer.Option(1.0, help="Seconds between sealing rounds (at most 2)", max=2.0, min=0.05),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Run the sealer (safe next to the sealers inside app processes: they take turns)."""
    from rempart.audit.sealing import SealerThread, seal_all
    from rempart.db import make_sessionmaker

    settings = get_settings()
    signer = load_signing_keys(settings)
    with _database(db) as engine:
        if once:
            numbers = seal_all(make_sessionmaker(engine), signer=signer, max_batch=settings.audit_max_batch)
            typer.echo(f"sealed {len(numbers)} checkpoint(s)")
            return
        sealer = SealerThread(engine, signer=signer, interval=interval, max_batch=settings.audit_max_batch)
        sealer.start()
        typer.echo(f"sealing every {interval} s; Ctrl-C to stop")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sealer.stop()


@audit_app.command("export")
def export(
    insurer: str = typer.Option(..., help="The insurer (id) receiving the heads as a witness"),
    since: int = typer.Option(1, min=1, max=MAX_NUMBER, help="First checkpoint number"),
    out: Path = typer.Option(..., help="File to write (JSON lines)"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Export signed checkpoint heads and the public keys for an insurer to keep as a witness."""
    from rempart.audit.witness import export_heads

    try:
        insurer_id = uuid.UUID(insurer)
    except ValueError:
        raise fail("--insurer takes an insurer id") from None
    keys = load_signing_keys(get_settings()).public_keys()
    try:
        with _database(db) as engine, engine.connect() as conn, out.open("w") as handle:
            count = 0
            for line in export_heads(conn, insurer_id=insurer_id, since=since, keys=keys):
                handle.write(json.dumps(line, separators=(",", ":")) + "\n")
                count += 1
    except OSError:
        raise fail(f"cannot write {out} (no such folder, or not allowed)") from None
    typer.echo(f"wrote {max(0, count - 1)} checkpoint heads to {out}")


@audit_app.command("keys")
def public_keys() -> None:
    """Print the public keys checkpoints are signed with (JWKS)."""
    typer.echo(json.dumps(load_signing_keys(get_settings()).public_keys().jwks(), indent=2))
