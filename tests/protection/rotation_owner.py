"""A ``rempart keys rotate`` run in a process of its own (``spawn``), so that what dies with it dies for
real: its database connections, its locks, its open files.

The test talks to it over a pipe: when asked to pause after N batches, the process sends ``"paused"``
once that many batches are committed and waits for ``"go"``; it sends ``("done", report)`` at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from rempart.config import Settings
from rempart.members.key_rotation import rotate_insurer_keys
from rempart.runtime import Runtime
from tests.support.spawned import spawned


def _rotate(
    *, settings: Settings, amc_number: str, batch_size: int, grace: float, pause_after: int | None, pipe: Connection
) -> None:
    runtime = Runtime.build(settings)
    batches = 0

    def progress(_done: int) -> None:
        nonlocal batches
        batches += 1
        if batches == pause_after:
            pipe.send("paused")
            assert pipe.recv() == "go"

    report = rotate_insurer_keys(
        runtime=runtime, amc_number=amc_number, batch_size=batch_size, grace_seconds=grace, on_progress=progress
    )
    pipe.send(("done", report.rows_reencrypted))
    runtime.close()


@dataclass
class Rotator:
    process: BaseProcess
    pipe: Connection

    def wait_paused(self) -> None:
        assert self.pipe.poll(60), "the rotation never reached its pause"
        assert self.pipe.recv() == "paused"

    def go(self) -> None:
        self.pipe.send("go")

    def wait_done(self) -> None:
        self.process.join(60)
        assert self.process.exitcode == 0, "the rotation failed"


@contextmanager
def rotation_process(
    settings: Settings, amc_number: str, *, batch_size: int, grace: float, pause_after: int | None = None
) -> Iterator[Rotator]:
    with spawned(
        _rotate,
        join=10,
        settings=settings,
        amc_number=amc_number,
        batch_size=batch_size,
        grace=grace,
        pause_after=pause_after,
    ) as (process, pipe):
        yield Rotator(process, pipe)
