"""Test harness: every test that takes ``runtime`` runs on SQLite and, when
``REMPART_TEST_DATABASE_URL`` is set, on PostgreSQL too (otherwise that half is reported skipped).

Isolation: SQLite tests get a copy of a template database migrated once per run; PostgreSQL tests
share one database created for this run (and this xdist worker), emptied after each test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import rempart.models  # noqa: F401  (every table, for emptying between tests)
from rempart.config import Settings, get_settings
from rempart.db import Base, make_engine
from rempart.logs import configure_logging
from rempart.migrate import upgrade
from rempart.protection.kek import LocalKeyRing, write_private
from rempart.runtime import Runtime
from tests.support.declared_problems import Watch, watching

PG_URL = os.environ.get("REMPART_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("REMPART_TEST_REDIS_URL", "")

configure_logging(json=True)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Commands read settings from the environment: each test sees its own."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def kek_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "kek.json"
    write_private(path, LocalKeyRing.new_document("kek-test-1"))
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this run and worker, migrated once, dropped at the end."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need REMPART_TEST_DATABASE_URL (e.g. postgresql://127.0.0.1:5432/test)")
    name = f"rempart_t_{uuid.uuid4().hex[:10]}_{_worker()}"
    admin = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(drivername="postgresql+psycopg", database=name)
    engine = make_engine(url.render_as_string(hide_password=False))
    # Migrations also create and grant the cluster-wide application role: xdist workers migrating
    # their own databases at the same moment would race on it ("tuple concurrently updated").
    with admin.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(20240201)"))
        try:
            upgrade(engine)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(20240201)"))
    engine.dispose()
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_pg(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "rempart.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_database")
        yield url
        _empty_pg(url)


@pytest.fixture
def settings(database_url: str, kek_file: Path, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        kek_file=kek_file,
        var_dir=tmp_path / "var",
        redis_url=REDIS_URL,
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.build(settings)
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def _problem_watch() -> Iterator[Watch]:
    with watching() as watch:
        yield watch


@pytest.fixture(autouse=True)
def _problems_are_declared(_problem_watch: Watch) -> Iterator[None]:
    """Every problem an API route answers during a test is one the OpenAPI document declares for it
    (``tests.support.declared_problems``)."""
    _problem_watch.undeclared.clear()
    yield
    seen = sorted(set(_problem_watch.undeclared))
    _problem_watch.undeclared.clear()
    if seen:
        pytest.fail("answers the OpenAPI document does not declare:\n" + "\n".join(seen), pytrace=False)
