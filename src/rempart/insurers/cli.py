"""``rempart insurers``: onboard an insurer (its AMC number, its name, its keys) and list them."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rempart.cli_refusals import fail, open_runtime, refusals
from rempart.insurers.directory import insurers_overview
from rempart.insurers.service import create_insurer

insurers_app = typer.Typer(no_args_is_help=True, help="Insurers (AMC): onboarding and the platform's list.")

MAX_NAME = 200  # the insurers table's column


def _amc(number: str) -> str:
    # ASCII digits only: ``isdigit`` also takes full-width and Arabic-Indic ones.
    if not (number.isascii() and number.isdigit() and 8 <= len(number) <= 10):
        raise fail("--amc: an AMC number has 8 to 10 digits")
    return number


def _name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise fail("--name: the insurer's name is empty")
    if len(cleaned) > MAX_NAME or not cleaned.isprintable():
        raise fail(f"--name: at most {MAX_NAME} printable characters")
    return cleaned


@insurers_app.command("create")
def create(
    amc: str = typer.Option(..., "--amc", help="AMC number: 8 to 10 digits"),
    name: str = typer.Option(..., "--name", help="The insurer's name, as its members know it"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Create an insurer and its encryption keys, in one transaction."""
    amc_number, cleaned = _amc(amc), _name(name)  # refused before anything is opened
    runtime = open_runtime(db)
    try:
        # A duplicate AMC number is the service's Conflict: a readable refusal, nothing written.
        with refusals(), runtime.sessions.begin() as session:
            insurer = create_insurer(session=session, keys=runtime.keys, amc_number=amc_number, name=cleaned)
            insurer_id = insurer.id
    finally:
        runtime.close()
    typer.echo(f"insurer {amc_number} ({cleaned}) created: {insurer_id}")


@insurers_app.command("list")
def list_insurers(db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)")) -> None:
    """Every insurer: AMC number, name, creation date, and counts of products and members."""
    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions.begin() as session:
            summaries = insurers_overview(session)
    finally:
        runtime.close()
    table = Table(title="Insurers")
    for column in ("AMC", "name", "created"):
        table.add_column(column)
    table.add_column("products", justify="right")
    table.add_column("members", justify="right")
    for s in summaries:
        table.add_row(
            s.amc_number, escape(s.name), s.created_at.strftime("%Y-%m-%d %H:%M UTC"), str(s.products), str(s.members)
        )
    Console(width=120).print(table)
