"""``rempart attest ...`` (verify an attestation, issue the cards of an insurer's members) and
``rempart keys rotate-attestation``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from rempart.cli_refusals import fail, open_runtime, refusals

attest_app = typer.Typer(no_args_is_help=True, help="Signed offline attestations: verify one, issue members' cards.")


def _now() -> datetime:
    return datetime.now(UTC)


def rotate_attestation(
    insurer: str = typer.Option(..., "--insurer", help="AMC number of the insurer"),
    revoke_previous: bool = typer.Option(
        False, "--revoke-previous", help="The previous key may be compromised: revoke it instead of retiring it"
    ),
    compromised_since: datetime | None = typer.Option(
        None,
        "--compromised-since",
        help="With --revoke-previous: refuse what the old key signed from this moment (ISO 8601, UTC; default now)",
    ),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Put a new attestation signing key in service for the insurer; publish it at once."""
    from rempart.attestations.keys import do_rotate_attestation_key

    since = compromised_since.replace(tzinfo=compromised_since.tzinfo or UTC) if compromised_since else None
    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions() as session:
            rotation = do_rotate_attestation_key(
                session,
                keks=runtime.keys.keks,
                amc_number=insurer,
                now=_now(),
                revoke_previous=revoke_previous,
                compromised_since=since,
            )
    finally:
        runtime.close()
    if rotation.previous_kid is None:
        typer.echo(f"insurer {insurer}: first attestation key {rotation.new_kid} in service")
    elif rotation.previous_revoked_at is not None:
        typer.echo(
            f"insurer {insurer}: key {rotation.new_kid} in service; key {rotation.previous_kid} revoked: what it "
            f"signed from {rotation.previous_revoked_at.isoformat()} is refused. Issue new attestations to the "
            "members it signed for (rempart attest issue)."
        )
    else:
        typer.echo(
            f"insurer {insurer}: key {rotation.new_kid} in service; key {rotation.previous_kid} retired (what it "
            "signed stays valid until it expires)"
        )


def _token_of(value: str) -> str:
    """The token itself, or read from a QR code image with a real decoder (zxing-cpp)."""
    path = Path(value)
    if not value.startswith("RA1:") and path.suffix.lower() in {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}:
        import zxingcpp
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                found = zxingcpp.read_barcodes(image.convert("L"))
        except FileNotFoundError:
            raise fail(f"no such image: {path}") from None
        except (UnidentifiedImageError, OSError):
            raise fail(f"{path} is not an image this command can read") from None
        codes = [code.text for code in found if code.text and code.format == zxingcpp.BarcodeFormat.QRCode]
        if not codes:
            raise fail(f"no QR code could be read in {path}: scan it again, flat and well lit")
        return codes[0]
    return value.strip()


def _keys(keys_file: Path | None, db: str) -> object:
    from rempart_verifier import KeySet

    if keys_file is not None:
        try:
            return KeySet.load(keys_file)
        except FileNotFoundError:
            raise fail(f"no such keys file: {keys_file}") from None
        except (ValueError, OSError):
            raise fail(f"{keys_file} is not a JWKS of attestation keys") from None
    from rempart.attestations.keys import published_keys

    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions() as session:
            return KeySet.from_jwks(published_keys(session, now=_now()).body)
    finally:
        runtime.close()


@attest_app.command("verify")
def verify(  # noqa: PLR0917  (each Typer option is a parameter)
    token: str = typer.Argument(..., help="The attestation (RA1:...) or a photo/scan of its QR code (.png, .jpg)"),
    nir: str | None = typer.Option(None, "--nir", help="The patient's NIR (from their carte Vitale)"),
    birth_date: str | None = typer.Option(None, "--birth-date", help="The patient's date of birth, YYYY-MM-DD"),
    on: str | None = typer.Option(None, "--on", help="Date of care, YYYY-MM-DD (default today)"),
    insurer: str | None = typer.Option(None, "--insurer", help="The AMC number printed on the card"),
    keys_file: Path | None = typer.Option(
        None, "--keys", help="A cached copy of /.well-known/rempart/attestation-keys (default: this platform's keys)"
    ),
    db: str = typer.Option("", help="Database URL, when --keys is not given"),
) -> None:
    """Verify an attestation with no network: signature, insurer, revocation, dates, and the patient."""
    from rempart_verifier import KeySet
    from rempart_verifier import verify as verify_token

    if (nir is None) != (birth_date is None):
        raise fail("give both --nir and --birth-date to confirm the patient, or neither", code=2)
    try:
        born = date.fromisoformat(birth_date) if birth_date else None
        day = date.fromisoformat(on) if on else datetime.now(UTC).date()
    except ValueError:
        raise fail("dates are written YYYY-MM-DD", code=2) from None
    keys = _keys(keys_file, db)
    assert isinstance(keys, KeySet)
    verdict = verify_token(_token_of(token), keys=keys, on=day, nir=nir, birth_date=born, insurer=insurer)
    console = Console(highlight=False)
    shown = verdict.attestation
    if verdict.valid and shown is not None:
        console.print(f"[bold green]valid[/]: card {shown.amc_number} / {shown.member_number} rank {shown.birth_rank}")
        console.print(f"  valid from {shown.valid_from.isoformat()} to {shown.valid_to.isoformat()}")
        console.print(f"  third-party payment: {', '.join(sorted(shown.third_party_payment)) or 'none'}")
        console.print(f"  prior approval required: {', '.join(sorted(shown.prior_approval)) or 'none'}")
        if nir is None:
            console.print("  [yellow]the patient was not confirmed: give --nir and --birth-date[/]")
        return
    assert verdict.refusal is not None
    console.print(f"[bold red]refused[/] ({verdict.refusal.value}): {verdict.refusal.explanation}")
    raise typer.Exit(1)


@attest_app.command("issue")
def issue(  # noqa: PLR0917  (each Typer option is a parameter)
    insurer: str = typer.Option(..., "--insurer", help="AMC number of the insurer"),
    out: Path = typer.Option(..., "--out", help="Folder to write one file per member number into"),
    file_format: str = typer.Option("pdf", "--format", help="pdf (cards to print) or json (tokens for a printer)"),
    renew_within: int | None = typer.Option(
        None,
        "--renew-within",
        min=0,
        max=56,
        help="Only members whose attestation ends within this many days (renewal)",
    ),
    lang: str = typer.Option("fr", "--lang", help="Language of the cards: fr or en"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Issue the insurer's members' attestations for card mailing: a file per member number, each
    issuance recorded in the access log. Run it daily with --renew-within 7 to renew before expiry."""
    from rempart.attestations.card import card_pdf
    from rempart.attestations.models import IssueReason
    from rempart.attestations.service import contracts_due, do_issue_for_mailing, face
    from rempart.insurers.service import insurer_by_amc

    if file_format not in {"pdf", "json"}:
        raise fail("--format is pdf or json", code=2)
    if lang not in {"fr", "en"}:
        raise fail("--lang is fr or en", code=2)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot create the folder {out}: {exc.strerror}") from None
    runtime = open_runtime(db)
    written = 0
    try:
        with refusals(), runtime.sessions() as session:
            insurer_id = insurer_by_amc(session, insurer).id
            now = _now()
            due = contracts_due(session, insurer_id=insurer_id, now=now, renew_within_days=renew_within)
            reason = IssueReason.MAILING if renew_within is None else IssueReason.RENEWAL
            progress = Progress(
                TextColumn("[bold]attestations[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("member numbers"),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            with progress:
                task = progress.add_task("issue", total=len(due))
                for cards in do_issue_for_mailing(
                    session, keys=runtime.keys, insurer_id=insurer_id, contract_ids=due, reason=reason, now=now
                ):
                    if cards.issued:
                        path = out / f"{cards.member_number}.{file_format}"
                        if file_format == "pdf":
                            path.write_bytes(card_pdf([face(i) for i in cards.issued], locale=lang))
                        else:
                            path.write_text(json.dumps([_json(i) for i in cards.issued], indent=1) + "\n")
                        written += len(cards.issued)
                    progress.advance(task)
    finally:
        runtime.close()
    typer.echo(f"insurer {insurer}: {written} attestations in {len(due)} files under {out}")


def _json(issued: object) -> dict[str, object]:
    from rempart.attestations.schemas import AttestationOut
    from rempart.attestations.service import Issued

    assert isinstance(issued, Issued)
    return AttestationOut.of(issued).model_dump(mode="json")
