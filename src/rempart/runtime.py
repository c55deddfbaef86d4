"""What a process holds once: settings, the database engine, the key service.

The app factory, the CLI and the tests each build one ``Runtime`` and pass it down; nothing reads
global state behind their back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from rempart.config import Settings
from rempart.db import make_engine, make_sessionmaker
from rempart.protection.kek import load_key_ring
from rempart.protection.service import KeyService
from rempart.web.capacity import pool_capacity


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: KeyService

    @classmethod
    def build(cls, settings: Settings, *, create_keys: bool = False, **engine_kwargs: Any) -> Runtime:
        ring = load_key_ring(env_value=settings.kek, file=settings.kek_file, create=create_keys)
        in_memory = settings.database_url in {"sqlite://", "sqlite:///:memory:"}
        if "pool_size" not in engine_kwargs and not in_memory:
            # A connection for every request in flight, every thread and the background work: a
            # thread never waits for a connection (``rempart.web.capacity``). Opened as needed.
            engine_kwargs |= {
                "pool_size": pool_capacity(max_in_flight=settings.max_in_flight, threads=settings.server_threads),
                "max_overflow": 0,
            }
        engine = make_engine(settings.database_url, **engine_kwargs)
        return cls(settings=settings, engine=engine, sessions=make_sessionmaker(engine), keys=KeyService(ring))

    def close(self) -> None:
        self.engine.dispose()
