"""``rempart reference``: load a nomenclature file, and show a code as the version in force sets it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rempart.cli_refusals import fail, open_runtime, refusals
from rempart.db import utcnow
from rempart.insurers.models import CareDomain
from rempart.reference.service import SHIPPED, ReferenceAct, acts_with_code, load, version_on

reference_app = typer.Typer(
    no_args_is_help=True, help="Reference nomenclature: the codes accepted per care domain, their base and rate."
)


@reference_app.command("load")
def load_file(
    file: Path | None = typer.Argument(None, help=f"Nomenclature file (default: the shipped {SHIPPED.name})"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Load a nomenclature version: checked whole first, refused whole on any fault; older versions stay."""
    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions.begin() as session:
            report = load(session=session, path=file)
    finally:
        runtime.close()
    typer.echo(report.message)


def _cents(value: int | None) -> str:
    return "-" if value is None else f"{value / 100:,.2f} EUR"


def _row(act: ReferenceAct) -> list[str]:
    device = " ".join(
        str(part.value) for part in (act.device_kind, act.correction, act.hearing_class) if part is not None
    )
    klass = act.sante_100_class.value if act.sante_100_class else "-"
    cells = [act.care_domain.value, act.code, act.label, _cents(act.base_cents), f"{act.amo_rate_pct} %", klass]
    return [escape(cell) for cell in (*cells, _cents(act.regulated_price_cents), device or "-")]


@reference_app.command("show")
def show(
    code: str = typer.Argument(..., help="Act or device code, e.g. G, HBLD634, 2210546"),
    domain: CareDomain | None = typer.Option(None, "--domain", help="Care domain (default: every domain)"),
    on: datetime | None = typer.Option(None, "--on", formats=["%Y-%m-%d"], help="Day of care (default: today)"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """A code as the version in force on a day of care sets it."""
    day = on.date() if on else utcnow().date()
    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions.begin() as session:
            version = version_on(session=session, day=day)
            acts = acts_with_code(session=session, code=code.strip().upper(), day=day, care_domain=domain)
    finally:
        runtime.close()
    if version is None:
        raise fail(f"no reference version is in force on {day.isoformat()}: load one with `rempart reference load`")
    if not acts:
        where = f" in {domain.value}" if domain else ""
        raise fail(f"code {code!r} is unknown{where} in reference {version} (in force on {day.isoformat()})")
    table = Table(title=f"Reference {version}, in force on {day.isoformat()}")
    for column in ("domain", "code", "label", "base", "AMO", "class", "regulated price", "device"):
        table.add_column(column)
    for act in acts:
        table.add_row(*_row(act))
    Console(width=160).print(table)
    for act in acts:
        if act.note:
            typer.echo(f"{act.care_domain.value} {act.code}: {act.note}")
