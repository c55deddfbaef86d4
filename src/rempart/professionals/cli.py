"""``rempart practices``: register a practice (an establishment, by its FINESS number)."""

from __future__ import annotations

import typer
from stdnum import luhn

from rempart.cli_refusals import fail, open_runtime, refusals
from rempart.professionals.models import Profession
from rempart.professionals.service import create_practice, is_valid_practice_number

practices_app = typer.Typer(no_args_is_help=True, help="Practices: pharmacies, optical shops, labs...")

MAX_NAME = 200  # the practices table's column


def is_valid_finess(number: str) -> bool:
    """Nine ASCII digits whose last one is the Luhn key of the first eight (python-stdnum has no
    FINESS module; the key is the same Luhn as the RPPS's). Corsica's 2A/2B numbers are not taken:
    the practices table and its API take digits only."""
    return is_valid_practice_number(number) and luhn.is_valid(number)


@practices_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="The practice's name"),
    profession: str = typer.Option(..., "--profession", help=", ".join(p.value for p in Profession)),
    finess: str = typer.Option(..., "--finess", help="FINESS number: 9 digits, the last a Luhn key"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Register a practice. Its admin is invited through the platform API (``/api/v1/platform/practices``)."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise fail("--name: the practice's name is empty")
    if len(cleaned) > MAX_NAME or not cleaned.isprintable():
        raise fail(f"--name: at most {MAX_NAME} printable characters")
    try:
        kind = Profession(profession.strip().lower())
    except ValueError:
        raise fail(f"--profession: one of {', '.join(p.value for p in Profession)}") from None
    if not is_valid_finess(finess):
        raise fail("--finess: a FINESS number has 9 digits, the last one its Luhn key")
    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions.begin() as session:
            practice = create_practice(session=session, name=cleaned, profession=kind, finess=finess)
            practice_id = practice.id
    finally:
        runtime.close()
    typer.echo(f"practice {finess} ({cleaned}, {kind.value}) created: {practice_id}")
