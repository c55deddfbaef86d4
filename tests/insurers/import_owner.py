"""Another app process that owns a members import: it takes the upload as the insurer API does
(``start_import``, then the background task ``run_import``), and is then killed or let go by the
test. It runs in a process of its own (``spawn``), so what dies with it dies for real: its database
connections, its locks, its open files.

The test talks to it over a pipe: the process sends ``("queued", job_id)`` once the job is
committed, waits for ``"run"``, and, when asked to pause after N batches, sends ``"paused"`` once
that many batches are written and waits for ``"go"``; it sends ``("done", None)`` at the end.
"""

from __future__ import annotations

import io
import multiprocessing
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from rempart.config import Settings
from rempart.db import utcnow
from rempart.identity.principal import StaffPrincipal
from rempart.members import importer, imports
from rempart.runtime import Runtime
from tests.support.spawned import spawned


def _own(
    *,
    settings: Settings,
    insurer_id: uuid.UUID,
    account_id: uuid.UUID,
    content: bytes,
    pause_after: int | None,
    pipe: Connection,
) -> None:
    runtime = Runtime.build(settings)
    if pause_after is not None:
        write_batch = importer._import_batch
        written = 0

        def pausing(*args: Any) -> importer.BatchOutcome:
            nonlocal written
            outcome = write_batch(*args)
            written += 1
            if written == pause_after:
                pipe.send(("paused", None))
                assert pipe.recv() == "go"
            return outcome

        importer._import_batch = pausing  # type: ignore[assignment]  # a pause point, nothing else changes
    staff = StaffPrincipal(insurer_id=insurer_id, account_id=account_id, roles=frozenset(), permissions=frozenset())
    with runtime.sessions() as session:
        job = imports.start_import(
            session=session,
            runtime=runtime,
            staff=staff,
            source=io.BytesIO(content),
            filename="adherents.csv",
            now=utcnow(),
        )
        session.commit()
    pipe.send(("queued", job.id))
    assert pipe.recv() == "run"
    imports.run_import(runtime, insurer_id=insurer_id, job_id=job.id)
    pipe.send(("done", None))


@dataclass
class ImportOwner:
    process: multiprocessing.process.BaseProcess
    pipe: Connection

    def expect(self, what: str, timeout: float = 60.0) -> Any:
        assert self.pipe.poll(timeout), f"the owning process sent nothing (waiting for {what})"
        said, value = self.pipe.recv()
        assert said == what, (said, what)
        return value

    def say(self, what: str) -> None:
        self.pipe.send(what)

    def kill(self) -> None:
        """What a deploy's SIGKILL, the OOM killer or a crash does: no cleanup runs."""
        self.process.kill()
        self.process.join(30)
        assert self.process.exitcode is not None


@contextmanager
def import_owner(
    settings: Settings,
    *,
    insurer_id: uuid.UUID,
    account_id: uuid.UUID,
    content: bytes,
    pause_after: int | None = None,
) -> Iterator[ImportOwner]:
    with spawned(
        _own, settings=settings, insurer_id=insurer_id, account_id=account_id, content=content, pause_after=pause_after
    ) as (process, pipe):
        yield ImportOwner(process, pipe)
