"""Containment records are written in a thread of their own.

The request that triggers a step may hold an open write transaction (its access event, its rights
check row) when it calls the engine; on SQLite a second writer would wait for it, and the request
waits for the engine: a deadlock until the busy timeout. So the engine sets the step in the counter
store at once (every process enforces it from the next request) and hands the database side (the
event, the containment row, the identity suspension, the alert) to this writer, which commits it as
soon as the database lets it.

``background=False`` runs the work inline (the engine's unit tests, the CLI).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rempart.logs import get_logger

log = get_logger("rempart.detection.recorder")

Work = Callable[[Session], object]
_ATTEMPTS = 5


class Recorder:
    def __init__(self, sessions: sessionmaker[Session], *, background: bool = True) -> None:
        self.sessions = sessions
        self.background = background
        self._queue: queue.Queue[tuple[Work, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, work: Work, *, what: str) -> None:
        if not self.background:
            self._run(work, what)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="rempart-detection-recorder", daemon=True)
                self._thread.start()
        self._queue.put((work, what))

    def drain(self) -> None:
        """Wait until everything submitted so far is committed (tests, shutdown)."""
        if self.background:
            self._queue.join()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._run(*item)
            except Exception as exc:  # noqa: BLE001 (the writer must outlive one bad record; it is logged)
                log.error("detection_record_failed", what=item[1] if item else "?", error_type=type(exc).__name__)
            finally:
                self._queue.task_done()

    def _run(self, work: Work, what: str) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self.sessions() as session, session.begin():
                    work(session)
                return
            except (OperationalError, IntegrityError) as exc:
                # Locked or briefly unreachable database, or another process's writer inserted the
                # same subject's containment row first (two steps in quick succession): the whole
                # record rolled back, so try it again a little later.
                log.warning("detection_record_retry", what=what, attempt=attempt, error_type=type(exc).__name__)
                if not self.background or attempt == _ATTEMPTS:
                    raise
                time.sleep(0.05 * 2**attempt)
            except SQLAlchemyError as exc:
                log.error("detection_record_failed", what=what, error_type=type(exc).__name__)
                if not self.background:
                    raise
                return
