"""Database engine, sessions and the declarative base shared by every domain.

SQLite is the embedded default and PostgreSQL the production database; the same models and
migrations serve both. Every insurer-owned table keeps ``insurer_id`` first in its primary key so
that a distributed PostgreSQL can shard on it without a schema change.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import DateTime, Enum, MetaData, Table, create_engine, event, func, insert, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in storage and back, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
# How long a writer waits for the other writers of its process before it goes ahead anyway (and
# lets SQLite's own busy timeout decide), so that a thread waiting on another never hangs.
_WRITER_WAIT = 10.0


class _WriterTurns:
    """Whose turn it is to write to one SQLite database: a lock for the threads of this process
    and, for a database file, an advisory ``flock`` on ``<database>-writer.lock`` for the processes
    (a process that dies releases it). Not owned by a thread: the pool may roll a connection back in
    another thread than the writer's. Both waits are bounded by ``_WRITER_WAIT``: past it the writer
    goes ahead without its turn and SQLite's own busy timeout decides, as it would without turns."""

    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._file: int | None = None
        if database and database != ":memory:" and not database.startswith("file:"):
            self._file = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
            weakref.finalize(self, os.close, self._file)  # with the engine that made it

    def take(self) -> bool:
        deadline = time.monotonic() + _WRITER_WAIT
        if not self._threads.acquire(timeout=_WRITER_WAIT):
            return False
        if self._file is None or self._lock_file(self._file, deadline):
            return True
        self._threads.release()
        return False

    @staticmethod
    def _lock_file(file: int, deadline: float) -> bool:
        # flock cannot time out: try, then retry after a pause growing to a millisecond (SQLite's own
        # busy handler sleeps 1, 2, 5, 10... ms).
        pause = 0.0001
        while True:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def give(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._threads.release()


def _serialised_writers(database: str | None) -> type[sqlite3.Connection]:
    """A ``sqlite3.Connection`` class whose transactions that write take turns.

    SQLite has one writer at a time. A connection that finds the database locked does not queue: it
    sleeps (1, 2, 5, 10... ms) and tries again, so with a dozen request threads in two processes
    writing at once most of them sleep while the lock is free, and throughput collapses. Here a
    transaction's first write waits for its turn (``_WriterTurns``), held until its commit or
    rollback: writers queue and are woken at once. SQLite's busy timeout still guards against a
    writer that does not take turns (another program). A thread writing on two connections at once
    would wait for itself, as it would for SQLite's lock.
    """
    turns = _WriterTurns(database)

    class TurnTakingCursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: Any = (), /) -> TurnTakingCursor:
            with self._turn(sql):
                return super().execute(sql, parameters)

        def executemany(self, sql: str, parameters: Any, /) -> TurnTakingCursor:
            with self._turn(sql):
                return super().executemany(sql, parameters)

        @contextmanager
        def _turn(self, sql: str) -> Iterator[None]:
            connection = self.connection
            assert isinstance(connection, TurnTakingConnection)
            starts = not connection.in_transaction and sql.lstrip()[:7].upper().startswith(_WRITE_VERBS)
            if starts:
                connection.take_turn()
            try:
                yield
            finally:
                # No transaction was opened (autocommit, or BEGIN refused): nothing to wait for.
                if starts and not connection.in_transaction:
                    connection.end_turn()

    class TurnTakingConnection(sqlite3.Connection):
        holding = False

        def cursor(self, factory: Any = None) -> Any:
            return super().cursor(factory or TurnTakingCursor)

        def take_turn(self) -> None:
            if not self.holding:
                self.holding = turns.take()

        def end_turn(self) -> None:
            if self.holding:
                self.holding = False
                turns.give()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.end_turn()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.end_turn()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.end_turn()

    return TurnTakingConnection


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        connect_args = {"factory": _serialised_writers(make_url(url).database), **kwargs.pop("connect_args", {})}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


class FileLeaseTaken(Exception):
    """Another process holds the file lease."""


@contextmanager
def file_lease(path: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created owner-only) while the block runs, the SQLite
    counterpart of ``ServerLease``: the OS drops it when its holder dies. ``FileLeaseTaken`` at
    once when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileLeaseTaken(path) from None
        yield
    finally:
        os.close(fd)  # releases the flock


def advisory_key(namespace: int, ident: uuid.UUID) -> tuple[int, int]:
    """A two-integer PostgreSQL advisory lock key: a domain's own key space, and 32 bits of ``ident``
    (two ids sharing a key only make one of them wait, or be refused, for the other)."""
    return namespace, int.from_bytes(ident.bytes[:4], "big", signed=True)


class ServerLease:
    """A PostgreSQL session-level advisory lock that dies with its holder: the server drops it when
    the process (and so its connection) dies. Held on a connection of its own, outside the pool
    (which would hand the lock to another request) and outside any transaction (an open one would
    hold back vacuum for as long as the lease is held)."""

    def __init__(self, engine: Engine, key: tuple[int, int]) -> None:
        self._engine = create_engine(engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._key = key
        self._connection: Connection | None = self._engine.connect()

    def take(self) -> bool:
        """Whether the lock was free and is now this lease's (``release`` it either way)."""
        assert self._connection is not None
        return bool(self._connection.scalar(select(func.pg_try_advisory_lock(*self._key))))

    def held(self) -> bool:
        if self._connection is None:
            return False
        try:  # the lock lives as long as the server session: is it still there?
            self._connection.exec_driver_sql("SELECT 1")
        except SQLAlchemyError:
            return False
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.scalar(select(func.pg_advisory_unlock(*self._key)))
            except SQLAlchemyError:
                pass  # the session is gone, and its lock with it
            finally:
                self._connection.close()
                self._connection = None
        self._engine.dispose()


# A pooled PostgreSQL connection is checked before use only when it has lain idle a while (a
# restart, a firewall or an idle timeout may have closed it meanwhile). ``pool_pre_ping`` checks it
# on every checkout: one more round trip on every request. One that dies while in use fails that
# request, and SQLAlchemy then discards every connection of the pool.
IDLE_PING_AFTER = 10.0  # seconds
_IDLE_SINCE = "rempart.idle_since"


def _ping_when_idle(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def note_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_AFTER:
            return  # new, or back in the pool a moment ago
        try:
            dialect.do_ping(dbapi_connection)  # what pool_pre_ping runs: one empty query
        except Exception:  # noqa: BLE001 - whatever the failure, this connection is unusable
            # The pool throws this connection away and checks out another (three tries).
            raise DisconnectionError("a pooled connection was closed while idle") from None


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_postgresql(session_or_engine: Session | Engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session, session.begin():
        yield session


def str_enum(enum: type[StrEnum], *, length: int) -> Enum:
    """A text column holding a ``StrEnum``'s values, with a CHECK constraint in the database."""
    return Enum(
        enum,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        create_constraint=True,
        name=enum.__name__.lower(),
    )


def bulk_insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert many rows in the session's transaction, as fast as each database allows.

    PostgreSQL: one ``INSERT ... SELECT FROM unnest(array, ...)`` per call, a single round trip
    that (unlike ``COPY FROM``) obeys row-level security. SQLite: the driver's ``executemany``.
    """
    if not rows:
        return
    table = cast(Table, model.__table__)
    columns = list(rows[0])
    if not is_postgresql(session):
        session.execute(insert(table), rows)
        return
    dialect = session.get_bind().dialect
    casts = [table.c[name].type.compile(dialect=dialect) for name in columns]
    arrays = [[_plain(row[name]) for row in rows] for name in columns]
    placeholders = ", ".join(f"CAST(:a{i} AS {cast}[])" for i, cast in enumerate(casts))
    # Names come from the model's metadata (an unknown column fails at table.c above), never input.
    statement = text(f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({placeholders})")  # noqa: S608
    session.execute(statement, {f"a{i}": values for i, values in enumerate(arrays)})


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value
