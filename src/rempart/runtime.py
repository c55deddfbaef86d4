"""What a process holds once: settings, the database engine, the key service, the detection engine,
the access log's signing keys and its sealer.

The app factory, the CLI and the tests each build one ``Runtime`` and pass it down; nothing reads
global state behind their back. The detection engine and the signing keys are built on first use
(a command that imports members needs neither); the app's lifespan starts and stops the sealer
and closes the detection engine (``rempart.app``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from rempart.audit.keys import LocalSigningKeys, load_signing_keys
from rempart.audit.sealing import SealerThread
from rempart.config import Settings
from rempart.db import make_engine, make_sessionmaker
from rempart.detection.engine import DetectionEngine
from rempart.protection.kek import load_key_ring
from rempart.protection.service import KeyService
from rempart.web.capacity import pool_capacity

# A sealer in an app process seals at least this often, whatever the settings say.
MAX_SEAL_INTERVAL = 2.0


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: KeyService
    _detection: DetectionEngine | None = field(default=None, init=False, repr=False)
    _signing_keys: LocalSigningKeys | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

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

    @property
    def detection(self) -> DetectionEngine:
        """The process's detection engine, built on first use (building connects to nothing).

        Tests give an app an engine of its own instead (``app.state.detection``, see
        ``rempart.detection.deps``): a controllable clock, a fresh Redis namespace."""
        engine = self._detection  # every request asks: no lock once it is built
        if engine is not None:
            return engine
        with self._lock:
            if self._detection is None:
                self._detection = DetectionEngine.build(self)
            return self._detection

    @property
    def signing_keys(self) -> LocalSigningKeys:
        """The keys that sign the access log's checkpoints, read (and created outside production)
        on first use."""
        with self._lock:
            if self._signing_keys is None:
                self._signing_keys = load_signing_keys(self.settings)
            return self._signing_keys

    def new_sealer(self) -> SealerThread | None:
        """A sealer for this app process to start, or ``None``: not under tests (they seal when
        they mean to), nor when ``REMPART_AUDIT_SEALER_IN_APP=false`` (a separate ``rempart audit
        seal`` worker). The sealers of several processes take turns through a row lock."""
        settings = self.settings
        if not settings.audit_sealer_in_app or settings.environment == "test":
            return None
        return SealerThread(
            self.engine,
            signer=self.signing_keys,
            interval=min(settings.audit_seal_interval_seconds, MAX_SEAL_INTERVAL),
            max_batch=settings.audit_max_batch,
        )

    def close_detection(self) -> None:
        """Close the detection engine if one was built (its records committed, its store closed);
        a later use builds a new one."""
        with self._lock:
            detection, self._detection = self._detection, None
        if detection is not None:
            detection.close()

    def close(self) -> None:
        self.close_detection()
        self.engine.dispose()
