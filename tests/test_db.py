"""The engines of ``rempart.db``. SQLite writers take turns: many threads in several processes
writing at once all succeed, none waits on SQLite's sleeping busy handler for long, and a reader is
never held up. PostgreSQL connections are checked for life only after lying idle in the pool."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from rempart import db
from rempart.db import make_engine

THREADS = 6
WRITES = 40


def _create(path: Path) -> None:
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (writer TEXT NOT NULL, n INTEGER NOT NULL)"))
    engine.dispose()


def _write_from_threads(engine: Engine, name: str, errors: list[str]) -> None:
    def work(thread: int) -> None:
        for n in range(WRITES):
            try:
                with engine.begin() as conn:
                    # A read first, then writes: the transaction becomes a writer part-way through,
                    # as a request's does (lookups, then its access event).
                    conn.execute(text("SELECT count(*) FROM counter")).scalar()
                    conn.execute(text("INSERT INTO counter VALUES (:w, :n)"), {"w": f"{name}-{thread}", "n": n})
                    conn.execute(text("INSERT INTO counter VALUES (:w, :n)"), {"w": f"{name}-{thread}", "n": -n})
            except Exception as exc:  # noqa: BLE001 - collected and asserted on by the test
                errors.append(type(exc).__name__)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)


def _process(path: str, name: str, queue: multiprocessing.Queue[list[str]]) -> None:
    engine = make_engine(f"sqlite:///{path}", pool_size=THREADS)
    errors: list[str] = []
    _write_from_threads(engine, name, errors)
    engine.dispose()
    queue.put(errors)


def test_writers_of_two_processes_and_many_threads_all_commit(tmp_path: Path) -> None:
    path = tmp_path / "turns.db"
    _create(path)
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    processes = [context.Process(target=_process, args=(str(path), f"p{i}", queue)) for i in range(2)]
    started = time.monotonic()
    for p in processes:
        p.start()
    errors = [queue.get(timeout=180) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    assert errors == [[], []]  # no "database is locked", no lost turn
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*), count(DISTINCT writer) FROM counter")).one()
    engine.dispose()
    assert tuple(rows) == (2 * THREADS * WRITES * 2, 2 * THREADS)
    # Generous: the point is that nobody sat out SQLite's 10-second busy timeout.
    assert time.monotonic() - started < 120
    assert (tmp_path / "turns.db-writer.lock").exists()


def test_a_failed_write_gives_its_turn_back(tmp_path: Path) -> None:
    path = tmp_path / "failed.db"
    _create(path)
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO counter VALUES ('a', 1)"))
            raise RuntimeError("the request failed after its first write")
    except RuntimeError:
        pass
    # Another thread can write at once: the rollback gave the turn back.
    done = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO counter VALUES ('b', 2)"))
        done.set()

    worker = threading.Thread(target=write)
    worker.start()
    assert done.wait(timeout=5)
    worker.join()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT writer FROM counter")).scalars().all() == ["b"]
    engine.dispose()


def test_a_reader_does_not_wait_for_a_writers_turn(tmp_path: Path) -> None:
    path = tmp_path / "read.db"
    _create(path)
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as writer:
        writer.execute(text("INSERT INTO counter VALUES ('w', 1)"))  # holds the turn, uncommitted
        read = threading.Event()

        def reader() -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT count(*) FROM counter")).scalar()
            read.set()

        thread = threading.Thread(target=reader)
        thread.start()
        assert read.wait(timeout=5)  # WAL: readers see the last commit without waiting
        thread.join()
        writer.rollback()
    engine.dispose()


def test_a_turn_held_elsewhere_is_waited_for_a_bounded_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process's turn (another lock file description) is waited for, not forever: past the
    bound the writer goes ahead and SQLite's busy timeout decides, as it would without turns."""
    monkeypatch.setattr(db, "_WRITER_WAIT", 0.2)
    path = str(tmp_path / "bounded.db")
    here, elsewhere = db._WriterTurns(path), db._WriterTurns(path)
    assert elsewhere.take()
    started = time.monotonic()
    assert not here.take()
    assert 0.15 < time.monotonic() - started < 5
    elsewhere.give()
    assert here.take()  # free again: taken at once
    here.give()


# -- PostgreSQL: a pooled connection is checked only after lying idle ------------------------------


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_used_a_moment_ago_is_not_pinged(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(pg_database, pool_size=1)
    pings: list[object] = []
    real_ping = engine.dialect.do_ping

    def counted_ping(connection: object) -> bool:
        pings.append(connection)
        return real_ping(connection)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.dialect, "do_ping", counted_ping)
    try:
        first = _backend_pid(engine)
        for _ in range(5):
            assert _backend_pid(engine) == first  # the same pooled connection each time
        assert pings == []  # no extra round trip on a busy connection
        monkeypatch.setattr(db, "IDLE_PING_AFTER", 0.0)
        assert _backend_pid(engine) == first
        assert len(pings) == 1  # idle (here: for any time at all), so checked first
    finally:
        engine.dispose()


def test_an_idle_connection_closed_by_the_server_is_replaced_unseen(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(pg_database, pool_size=1)
    admin = make_engine(pg_database)
    try:
        first = _backend_pid(engine)
        with admin.connect() as conn:  # as a restart or an idle timeout would
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
        monkeypatch.setattr(db, "IDLE_PING_AFTER", 0.0)
        second = _backend_pid(engine)  # no error reaches the caller
        assert second != first
    finally:
        engine.dispose()
        admin.dispose()
