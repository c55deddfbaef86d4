"""The ``rempart`` command line. Each domain with commands mounts its own Typer app here."""

from __future__ import annotations

import typer

from rempart.config import get_settings
from rempart.errors import RempartError
from rempart.logs import configure_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Rempart: tiers payant that survives a phished login.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")


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


# Domain command groups: one line each.
