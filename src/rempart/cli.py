"""The ``rempart`` command line. Each domain with commands mounts its own Typer app here."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from rempart.config import get_settings
from rempart.errors import RempartError
from rempart.logs import configure_logging
from rempart.members.importer import ImportReport
from rempart.runtime import Runtime

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Rempart: tiers payant that survives a phished login."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
members_app = typer.Typer(no_args_is_help=True, help="Members of an insurer.")
keys_app = typer.Typer(no_args_is_help=True, help="Per-insurer encryption keys.")
app.add_typer(db_app, name="db")
app.add_typer(members_app, name="members")
app.add_typer(keys_app, name="keys")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a readable error (never a stack trace) and return the exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@app.callback()
def main() -> None:
    configure_logging(json=get_settings().log_json)


@db_app.command("upgrade")
def db_upgrade(db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)")) -> None:
    """Apply every migration to the database."""
    from rempart.db import make_engine
    from rempart.migrate import upgrade

    settings = get_settings()
    url = db or settings.database_url
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        upgrade(engine)
    except RempartError as exc:
        raise fail(exc.detail) from None
    finally:
        engine.dispose()
    typer.echo("database is at the latest schema")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind"),
    port: int = typer.Option(8000, help="Port"),
    workers: int = typer.Option(1, help="Server processes"),
) -> None:
    """Serve the API and portals."""
    import uvicorn

    uvicorn.run("rempart.asgi:app", host=host, port=port, workers=workers, proxy_headers=False, access_log=False)


def _runtime(db: str = "", *, create_keys: bool = False) -> Runtime:
    settings = get_settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    try:
        return Runtime.build(settings, create_keys=create_keys)
    except RempartError as exc:
        raise fail(exc.detail) from None


@app.command()
def demo(
    members: int = typer.Option(10_000, min=1, max=5_000_000, help="Synthetic members to load"),
    port: int = typer.Option(8000, help="Port to serve on"),
    db: str = typer.Option("", help="Database URL (default: SQLite file var/rempart.db)"),
    seed: int = typer.Option(2024, help="Seed of the synthetic population"),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve once loaded"),
) -> None:
    """Create a database, load a synthetic population, print how to try it, and serve."""
    from rempart.db import make_engine
    from rempart.demo import build_demo
    from rempart.migrate import upgrade

    settings = get_settings()
    url = db or settings.database_url
    origin = f"http://localhost:{port}"
    settings = settings.model_copy(update={"database_url": url, "public_origin": origin, "rp_id": "localhost"})
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        runtime = Runtime.build(settings, create_keys=True)
    except RempartError as exc:
        raise fail(exc.detail) from None
    console = Console()

    def imported(amc: str, report: ImportReport) -> None:
        console.print(
            f"  insurer {amc}: {report.beneficiaries_created:,} beneficiaries imported, "
            f"{report.unchanged:,} already there, {report.rejected:,} rejected ({report.rows_per_second:,.0f} rows/s)"
        )

    console.print(f"Loading {members:,} synthetic members into {make_url_safe(url)} ...")
    with console.status("generating, validating, encrypting"):
        doc = build_demo(runtime=runtime, members=members, seed=seed, on_import=imported)
    runtime.close()
    var = settings.var_dir
    console.print(f"\n[bold]Rempart demo ready[/bold] at {origin}  (health: {origin}/healthz)")
    console.print(f"  Sample patients, practice-software credentials and enrolment links: {var / 'demo.json'}")
    patient = doc["patients"][0]
    console.print(
        f"  e.g. card {patient['card']['amc_number']} / {patient['card']['member_number']}, "
        f"NIR and date of birth in demo.json (never printed to the terminal)"
    )
    console.print(f"  API description: {origin}/openapi.json")
    if serve_after:
        import os

        import uvicorn

        os.environ["REMPART_DATABASE_URL"] = url
        os.environ["REMPART_PUBLIC_ORIGIN"] = origin
        os.environ["REMPART_RP_ID"] = "localhost"
        get_settings.cache_clear()
        uvicorn.run("rempart.asgi:app", host="127.0.0.1", port=port, access_log=False)


def make_url_safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def synth(
    out: Path = typer.Argument(..., help="File to write: .csv or .ndjson"),
    members: int = typer.Option(1000, min=1, help="Members (contracts) to generate"),
    seed: int = typer.Option(2024, help="Seed: the same seed gives the same population"),
    products: str = typer.Option("ESSENTIEL,CONFORT,PREMIUM", help="Product codes, comma separated"),
    first_number: int = typer.Option(1, help="First member number"),
) -> None:
    """Write a synthetic French population (valid NIRs, families, twins) as a members file."""
    from rempart.db import utcnow
    from rempart.members.synth import synth_members, write_members_file

    codes = [c.strip() for c in products.split(",") if c.strip()]
    rows = write_members_file(
        out,
        synth_members(count=members, seed=seed, product_codes=codes, today=utcnow().date(), first_number=first_number),
    )
    typer.echo(f"wrote {rows:,} beneficiaries of {members:,} members to {out}")


@members_app.command("import")
def members_import(
    file: Path = typer.Argument(..., help="Members file, CSV (with header) or NDJSON"),
    insurer: str = typer.Option(..., "--insurer", help="AMC number of the insurer"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
    report_file: Path | None = typer.Option(None, "--report", help="Write every rejected row here (CSV)"),
    workers: int = typer.Option(1, min=1, max=32, help="Processes validating, encrypting and writing batches"),
) -> None:
    """Validate and import members; bad rows are reported and not imported."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rempart.members.importer import import_members, prescan

    runtime = _runtime(db)
    try:
        _fmt, total = prescan(file)
        columns = (
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task("import", total=total, rate="-")
            started = time.perf_counter()

            def advance(done: int) -> None:
                rate = done / max(time.perf_counter() - started, 1e-9)
                progress.update(task, completed=done, rate=f"{rate:,.0f}")

            report = import_members(
                runtime=runtime, path=file, amc_number=insurer, workers=workers, on_progress=advance
            )
    except RempartError as exc:
        raise fail(exc.detail) from None
    finally:
        runtime.close()
    console = Console()
    console.print(
        f"{report.rows:,} rows read in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s): "
        f"{report.contracts_created:,} contracts and {report.beneficiaries_created:,} beneficiaries imported, "
        f"{report.unchanged:,} unchanged, {report.rejected:,} rejected"
    )
    if report.errors:
        table = Table("line", "field", "reason", title="Rejected rows")
        for error in report.errors[:30]:
            table.add_row(str(error.line), error.field, error.reason)
        console.print(table)
        if report.rejected > 30:
            console.print(f"... and {report.rejected - 30:,} more" + ("" if report_file else " (see --report)"))
    if report_file:
        with report_file.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "field", "reason"])
            writer.writerows((e.line, e.field, e.reason) for e in report.errors)
    if report.rejected:
        raise typer.Exit(2)


@keys_app.command("rotate")
def keys_rotate(
    insurer: str = typer.Option(..., "--insurer", help="AMC number of the insurer"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
    batch: int = typer.Option(1000, min=1, help="Rows re-encrypted per transaction"),
    grace: float = typer.Option(31.0, min=0, help="Seconds to wait for every process to reload its keys"),
) -> None:
    """Re-wrap the insurer's keys, re-encrypt and re-index its members, destroy the old keys."""
    from rempart.protection.rotation import rotate_insurer_keys

    runtime = _runtime(db)
    try:
        report = rotate_insurer_keys(runtime=runtime, amc_number=insurer, batch_size=batch, grace_seconds=grace)
    except RempartError as exc:
        raise fail(exc.detail) from None
    finally:
        runtime.close()
    typer.echo(
        f"insurer {insurer}: {report.keys_rewrapped} keys re-wrapped, data key v{report.data_version} and "
        f"index key v{report.index_version} active, {report.rows_reencrypted:,} beneficiaries re-encrypted, "
        f"{report.keys_destroyed} old keys destroyed"
    )


# Domain command groups: one line each.
from rempart.audit.cli import audit_app  # noqa: E402  (domain groups mount at the end)

app.add_typer(audit_app, name="audit")
from rempart.identity.cli import identity_app  # noqa: E402

app.add_typer(identity_app, name="identity")
