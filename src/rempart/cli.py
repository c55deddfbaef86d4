"""The ``rempart`` command line. Each domain with commands mounts its own Typer app here."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from rempart.cli_refusals import checked_database_url, database_problem, fail, open_runtime, refusals, settings_or_exit
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


MAX_PORT = 65_535
MAX_SERVER_WORKERS = 256  # server processes on one machine; more is a typo, not a deployment
MAX_MEMBER_NUMBER = 9_999_999_999  # synthetic member numbers are ten digits
MAX_BATCH = 100_000  # rows per transaction, as REMPART_IMPORT_BATCH_SIZE
MAX_GRACE = 86_400.0  # seconds: a day is far past any process's key cache


@app.callback()
def main() -> None:
    configure_logging(json=settings_or_exit().log_json)


@db_app.command("upgrade")
def db_upgrade(db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)")) -> None:
    """Apply every migration to the database."""
    from rempart.db import make_engine
    from rempart.migrate import upgrade

    url = checked_database_url(db or settings_or_exit().database_url, must_exist=False)
    _make_sqlite_folder(url)
    engine = make_engine(url)
    try:
        with refusals():
            upgrade(engine)
    finally:
        engine.dispose()
    typer.echo("database is at the latest schema")


def _make_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fail(f"cannot create the folder of the database {parsed.database}: {exc.strerror}") from None


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind"),
    port: int = typer.Option(8000, min=1, max=MAX_PORT, help="Port"),
    workers: int = typer.Option(1, min=1, max=MAX_SERVER_WORKERS, help="Server processes"),
) -> None:
    """Serve the API and portals (more than one process needs REMPART_REDIS_URL)."""
    from rempart.serving import refusal_to_serve, run_server

    settings = settings_or_exit()
    refused = refusal_to_serve(settings, workers=workers)
    if refused:
        raise fail(refused)
    # Each server process builds its runtime as it imports the app: a key ring or database URL it
    # cannot use is refused here, readably, rather than as a traceback from every process.
    open_runtime().close()
    with refusals():
        run_server(settings, host=host, port=port, workers=workers)


@app.command()
def demo(
    members: int = typer.Option(10_000, min=1, max=5_000_000, help="Synthetic members to load"),
    port: int = typer.Option(8000, min=1, max=MAX_PORT, help="Port to serve on"),
    db: str = typer.Option("", help="Database URL (default: SQLite file var/rempart.db)"),
    seed: int = typer.Option(2024, help="Seed of the synthetic population"),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve once loaded"),
) -> None:
    """Create a database, load a synthetic population, print how to try it, and serve."""
    from rempart.db import make_engine
    from rempart.demo import build_demo
    from rempart.migrate import upgrade

    settings = settings_or_exit()
    url = checked_database_url(db or settings.database_url, must_exist=False)
    origin = f"http://localhost:{port}"
    settings = settings.model_copy(update={"database_url": url, "public_origin": origin, "rp_id": "localhost"})
    _make_sqlite_folder(url)
    engine = make_engine(url)
    try:
        with refusals():
            upgrade(engine)
    finally:
        engine.dispose()
    if serve_after:
        from rempart.serving import one_server_without_redis

        # Refused now rather than after loading: the lease is taken again to serve.
        with refusals(), one_server_without_redis(settings):
            pass
    with refusals():
        runtime = Runtime.build(settings, create_keys=True)
    console = Console()

    def imported(amc: str, report: ImportReport) -> None:
        console.print(
            f"  insurer {amc}: {report.beneficiaries_created:,} beneficiaries imported, "
            f"{report.unchanged:,} already there, {report.rejected:,} rejected ({report.rows_per_second:,.0f} rows/s)"
        )

    console.print(f"Loading {members:,} synthetic members into {make_url_safe(url)} ...")
    try:
        with console.status("generating, validating, encrypting"), refusals():
            doc = build_demo(runtime=runtime, members=members, seed=seed, on_import=imported)
    finally:
        runtime.close()
    var = settings.var_dir
    console.print(f"\n[bold]Rempart demo ready[/bold]: open {origin}/ in a browser (health: {origin}/healthz)")
    console.print(f"  Sample patients, practice-software credentials and enrolment links: {var / 'demo.json'}")
    patient = doc["patients"][0]
    console.print(
        f"  e.g. card {patient['card']['amc_number']} / {patient['card']['member_number']}, "
        f"NIR and date of birth in demo.json (never printed to the terminal)"
    )
    console.print(f"  API description: {origin}/openapi.json")
    if serve_after:
        from rempart.serving import run_server

        os.environ["REMPART_DATABASE_URL"] = url
        os.environ["REMPART_PUBLIC_ORIGIN"] = origin
        os.environ["REMPART_RP_ID"] = "localhost"
        os.environ["REMPART_DEMO_START_PAGE"] = "1"
        get_settings.cache_clear()
        with refusals():
            run_server(settings, host="127.0.0.1", port=port, workers=1)


def make_url_safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def synth(
    out: Path = typer.Argument(..., help="File to write: .csv or .ndjson"),
    members: int = typer.Option(1000, min=1, max=MAX_MEMBER_NUMBER, help="Members (contracts) to generate"),
    seed: int = typer.Option(2024, help="Seed: the same seed gives the same population"),
    products: str = typer.Option("ESSENTIEL,CONFORT,PREMIUM", help="Product codes, comma separated"),
    first_number: int = typer.Option(1, min=1, max=MAX_MEMBER_NUMBER, help="First member number"),
) -> None:
    """Write a synthetic French population (valid NIRs, families, twins) as a members file."""
    from rempart.db import utcnow
    from rempart.members.synth import synth_members, write_members_file

    codes = [c.strip() for c in products.split(",") if c.strip()]
    if not codes:
        raise fail("--products: name at least one product code")
    if first_number + members - 1 > MAX_MEMBER_NUMBER:
        raise fail(f"--first-number {first_number} and --members {members}: member numbers stop at {MAX_MEMBER_NUMBER}")
    if out.is_dir():
        raise fail(f"{out} is a folder: name the members file to write (.csv or .ndjson)")
    records = synth_members(
        count=members, seed=seed, product_codes=codes, today=utcnow().date(), first_number=first_number
    )
    try:
        rows = write_members_file(out, records)
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror}") from None
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

    _check_members_file(file)
    if report_file is not None:
        _check_report_file(report_file)
    runtime = open_runtime(db)
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
    except SQLAlchemyError as exc:
        raise fail(database_problem(exc)) from None
    except OSError as exc:  # the file went away or became unreadable after the checks
        raise fail(f"{file}: cannot be read ({exc.strerror})") from None
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
        try:
            with report_file.open("w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(["line", "field", "reason"])
                writer.writerows((e.line, e.field, e.reason) for e in report.errors)
        except OSError as exc:
            done = "the import is done, but the report could not be written to"
            raise fail(f"{done} {report_file}: {exc.strerror}") from None
    if report.rejected:
        raise typer.Exit(2)


@members_app.command("renew-cards")
def members_renew_cards(
    insurer: str = typer.Option(..., "--insurer", help="AMC number of the insurer"),
    year: int = typer.Option(
        ..., "--year", min=2000, max=9999, help="The year the cards are for: this year or the next"
    ),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Issue the year's tiers payant card of every contract in force that year (the yearly job, run
    in December for the next year). Running it again issues nothing more."""
    from rempart.db import utcnow
    from rempart.fields import paris_day
    from rempart.insurers.service import insurer_by_amc
    from rempart.members.cards import renew_cards

    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions.begin() as session:
            insurer_id = insurer_by_amc(session, insurer).id
            issued = renew_cards(session, insurer_id=insurer_id, year=year, today=paris_day(utcnow()))
    finally:
        runtime.close()
    typer.echo(f"insurer {insurer}: {issued:,} cards issued for {year}")


def _check_members_file(file: Path) -> None:
    if file.is_dir():
        raise fail(f"{file} is a folder: name the members file (CSV or NDJSON)")
    if not file.exists():
        raise fail(f"{file}: no such file")
    if not os.access(file, os.R_OK):
        raise fail(f"{file}: cannot be read (permission denied)")


def _check_report_file(report_file: Path) -> None:
    """Refused before importing: a report that cannot be written would be found out only after."""
    if report_file.is_dir():
        raise fail(f"--report {report_file} is a folder: name the CSV file to write")
    folder = report_file.parent
    if not folder.is_dir():
        raise fail(f"--report {report_file}: the folder {folder} does not exist")
    if not os.access(report_file if report_file.exists() else folder, os.W_OK):
        raise fail(f"--report {report_file}: cannot be written (permission denied)")


@keys_app.command("rotate")
def keys_rotate(
    insurer: str = typer.Option(..., "--insurer", help="AMC number of the insurer"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
    batch: int = typer.Option(1000, min=1, max=MAX_BATCH, help="Rows re-encrypted per transaction"),
    # Bounded: a wait past what time.sleep takes (inf, 1e400) failed after the rotation had begun.
    grace: float = typer.Option(
        31.0, min=0, max=MAX_GRACE, help="Seconds to wait for every process to reload its keys"
    ),
) -> None:
    """Re-wrap the insurer's keys, re-encrypt and re-index its members and its claims' rejection
    comments, destroy the old keys."""
    from rempart.claims.key_rotation import ClaimCommentRows
    from rempart.members.key_rotation import rotate_insurer_keys

    runtime = open_runtime(db)
    try:
        with refusals():
            report = rotate_insurer_keys(
                runtime=runtime,
                amc_number=insurer,
                batch_size=batch,
                grace_seconds=grace,
                also=[ClaimCommentRows()],
            )
    finally:
        runtime.close()
    typer.echo(
        f"insurer {insurer}: {report.keys_rewrapped} keys re-wrapped, data key v{report.data_version} and "
        f"index key v{report.index_version} active, {report.rows_reencrypted:,} rows re-encrypted, "
        f"{report.keys_destroyed} old keys destroyed"
    )


# Domain command groups: one line each.
from rempart.audit.cli import audit_app  # noqa: E402  (domain groups mount at the end)

app.add_typer(audit_app, name="audit")
from rempart.identity.cli import identity_app  # noqa: E402

app.add_typer(identity_app, name="identity")
from rempart.attestations.cli import attest_app, rotate_attestation  # noqa: E402

app.add_typer(attest_app, name="attest")
from rempart.incidents.cli import incident_app  # noqa: E402

app.add_typer(incident_app, name="incident")
from rempart.insurers.cli import insurers_app  # noqa: E402

app.add_typer(insurers_app, name="insurers")
from rempart.professionals.cli import practices_app  # noqa: E402

app.add_typer(practices_app, name="practices")
keys_app.command("rotate-attestation")(rotate_attestation)
from rempart.reference.cli import reference_app  # noqa: E402

app.add_typer(reference_app, name="reference")
