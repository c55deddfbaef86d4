"""How every ``rempart`` command refuses what a user can get wrong (settings, a database URL, a
database that cannot be used, a domain refusal): a readable message on stderr and a non-zero exit,
never a traceback. Apart from ``rempart.cli`` so that the domains' command groups, which it mounts,
use the same words without importing it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from rempart.config import Settings, get_settings
from rempart.errors import RempartError
from rempart.runtime import Runtime


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a readable error (never a stack trace) and return the exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


# The drivers Rempart ships with: any other URL would fail deep in SQLAlchemy with a traceback.
_DATABASE_DRIVERS = {"sqlite": "sqlite", "sqlite+pysqlite": "sqlite", "postgresql": "postgresql"}
_DATABASE_DRIVERS["postgresql+psycopg"] = "postgresql"


def settings_or_exit() -> Settings:
    """The settings from the environment, or a readable refusal naming what is wrong with them."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "value_error" or not error["loc"]
            else f"REMPART_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise fail(f"invalid settings: {problems}") from None


def checked_database_url(url: str, *, must_exist: bool = True) -> str:
    """Refuse a database URL Rempart cannot use before anything is opened or created.

    ``must_exist``: a SQLite file must already be there (every command but ``db upgrade`` and
    ``demo``); otherwise opening it would leave an empty database file behind a refusal.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise fail("the database URL is not a URL (sqlite:///path/to/file.db or postgresql://host/name)") from None
    kind = _DATABASE_DRIVERS.get(parsed.drivername)
    if kind is None:
        raise fail(
            f"the database URL names {parsed.drivername!r}: Rempart runs on SQLite (sqlite:///path/to/file.db) "
            "or PostgreSQL (postgresql://host/name)"
        )
    if kind == "sqlite" and parsed.database and parsed.database != ":memory:" and "mode=memory" not in url:
        path = Path(parsed.database)
        if path.is_dir():
            raise fail(f"the database {path} is a folder, not a SQLite file")
        if must_exist and not path.is_file():
            raise fail(f"no database at {path}: create it with `rempart db upgrade --db {url}`")
    return url


def database_problem(exc: SQLAlchemyError) -> str:
    """The driver's own first line (no SQL, no parameters: they may hold personal data)."""
    cause = getattr(exc, "orig", None)
    lines = str(cause if cause is not None else exc).strip().splitlines()
    first = lines[0].strip() if lines else type(exc).__name__
    if "no such table" in first or ("relation" in first and "does not exist" in first):
        return f"the database has no Rempart schema ({first}): run `rempart db upgrade` first"
    return f"the database could not be used: {first}"


@contextmanager
def refusals() -> Iterator[None]:
    """Turn what a user can cause (a domain refusal, a database that cannot be used) into a
    readable error and a non-zero exit."""
    try:
        yield
    except RempartError as exc:
        raise fail(exc.detail) from None
    except SQLAlchemyError as exc:
        raise fail(database_problem(exc)) from None


def open_runtime(db: str = "", *, create_keys: bool = False) -> Runtime:
    """The command's runtime on ``db`` (default: the settings'), or a readable refusal."""
    settings = settings_or_exit()
    settings = settings.model_copy(update={"database_url": checked_database_url(db or settings.database_url)})
    with refusals():
        return Runtime.build(settings, create_keys=create_keys)
