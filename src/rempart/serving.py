"""One process state or none: how ``rempart serve`` and ``rempart demo`` run the app server.

Without ``REMPART_REDIS_URL`` a server process keeps in its own memory what every process must
share: the first-use records of client assertions and DPoP proofs (``rempart.identity.replay``),
the login throttles and detection's counters. A proof used at one process and replayed to another
would be accepted there and mint a token. So without Redis, Rempart serves from one process per
database, and refuses any other:

- ``--workers N`` past 1 is refused before anything starts;
- a serving process holds an exclusive lease on its database for as long as it serves, and a second
  server on the same database (another port, another terminal) is refused. On PostgreSQL the lease
  is a session-level advisory lock on a connection of its own (``rempart.db.ServerLease``); on
  SQLite, whose database is a file on one machine, an ``flock`` on ``<database>-serving.lock``
  beside it. Either is released by the server or the operating system when the process dies.

A PostgreSQL lease whose connection is cut (a database restart, an idle timeout) is lost while its
holder lives: a watcher checks it every few seconds and takes it back, and if another server took it
meanwhile, this one stops serving rather than run beside it.

With Redis every process shares the same records and counters: no lease, any number of processes.
The server believes ``X-Forwarded-For`` only from ``REMPART_TRUSTED_PROXIES`` (the app's own
middleware): uvicorn's proxy handling, which believes it from 127.0.0.1, stays off.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from rempart.config import Settings
from rempart.db import FileLeaseTaken, ServerLease, file_lease, make_engine
from rempart.errors import Conflict

# Two-integer advisory locks are a key space of their own ("SERV"); one lease per database
# (PostgreSQL's advisory locks belong to the database they are taken in).
_SERVING_LOCKS = 0x53455256
SERVING_KEY = (_SERVING_LOCKS, 0)
# How often a PostgreSQL lease's connection is checked (seconds).
WATCH_EVERY = 2.0

_WHY = (
    "without Redis each server process keeps its own records of the client assertions and DPoP proofs "
    "already used, its own login throttles and its own detection counters, so a proof used at one process "
    "would be accepted again at another"
)
_ANOTHER_SERVER = (
    "another Rempart server is already serving this database without REMPART_REDIS_URL: "
    + _WHY
    + ". Set REMPART_REDIS_URL to a Redis every server process shares, or stop the other server first."
)
_LOST = (
    "this server lost its lease on the database (its connection was cut) and another Rempart server "
    "took it: stopping, so that two servers do not run without REMPART_REDIS_URL. " + _WHY + "."
)


def refusal_to_serve(settings: Settings, *, workers: int) -> str | None:
    """Why ``workers`` server processes cannot serve with these settings, or None if they can."""
    if workers > 1 and not settings.redis_url:
        return (
            f"--workers {workers} needs REMPART_REDIS_URL: "
            + _WHY
            + ". Set REMPART_REDIS_URL to a Redis every server process shares, or serve with --workers 1."
        )
    return None


def run_server(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve ``rempart.asgi:app`` (its processes read their settings from the environment), holding
    the database's lease when there is no Redis."""
    import uvicorn

    refused = refusal_to_serve(settings, workers=workers)
    if refused:
        raise Conflict(refused)
    with one_server_without_redis(settings):
        # proxy_headers=False: X-Forwarded-For is believed only from REMPART_TRUSTED_PROXIES (the
        # app's middleware); uvicorn's default believes it from 127.0.0.1, so any local caller
        # would choose the address the access log and detection keep.
        uvicorn.run("rempart.asgi:app", host=host, port=port, workers=workers, proxy_headers=False, access_log=False)


@contextmanager
def one_server_without_redis(settings: Settings) -> Iterator[None]:
    """Held while this process serves: without Redis, the database's serving lease, or ``Conflict``
    if another process holds it. With Redis, or on a database in memory (this process's own),
    nothing to hold."""
    if settings.redis_url:
        yield
        return
    url = make_url(settings.database_url)
    if url.get_backend_name() == "postgresql":
        with _postgresql_lease(settings.database_url, on_lost=_stop_serving):
            yield
    elif url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        with _file_lease(Path(url.database)):
            yield
    else:
        yield


@contextmanager
def _file_lease(database: Path) -> Iterator[None]:
    # Beside the file the path resolves to, whatever path (relative, through a link) names it.
    try:
        with file_lease(f"{database.resolve()}-serving.lock"):
            yield
    except FileLeaseTaken:
        raise Conflict(_ANOTHER_SERVER) from None


@contextmanager
def _postgresql_lease(database_url: str, *, on_lost: Callable[[], None]) -> Iterator[None]:
    lease = _WatchedLease(database_url, on_lost=on_lost)
    try:
        if not lease.take():
            raise Conflict(_ANOTHER_SERVER)
        lease.watch()
        yield
    finally:
        lease.release()


class _WatchedLease:
    """The database's serving lease on PostgreSQL, taken back by a watcher thread when its connection
    is cut; ``on_lost`` is called (from that thread) if another process took it meanwhile."""

    def __init__(self, database_url: str, *, on_lost: Callable[[], None]) -> None:
        self._database_url = database_url
        self._on_lost = on_lost
        self._lease = self._new_lease()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def _new_lease(self) -> ServerLease:
        engine = make_engine(self._database_url)  # only its URL: the lease opens a connection of its own
        try:
            return ServerLease(engine, SERVING_KEY)
        finally:
            engine.dispose()

    def take(self) -> bool:
        return self._lease.take()

    def watch(self) -> None:
        self._watcher = threading.Thread(target=self._watch, name="rempart-serving-lease", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            if self._lease.held():
                continue
            self._lease.release()
            try:
                lease = self._new_lease()
            except SQLAlchemyError:
                continue  # the database does not answer: nobody can take the lease; try again later
            try:
                taken = lease.take()
            except SQLAlchemyError:
                lease.release()
                continue
            self._lease = lease
            if not taken:
                self._on_lost()
                return

    def release(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        self._lease.release()


def _stop_serving() -> None:
    """Stop uvicorn as ``kill`` would: it shuts down, then ends this process on the same signal
    (which is why the reason is printed first)."""
    typer.secho(f"error: {_LOST}", err=True, fg=typer.colors.RED)
    os.kill(os.getpid(), signal.SIGTERM)
