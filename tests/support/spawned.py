"""A piece of Rempart run in a process of its own (``spawn``), so that what dies with it dies for
real: its database connections, its locks, its open files. The test talks to it over a pipe."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any


@contextmanager
def spawned(
    target: Callable[..., None], *, join: float = 30, **kwargs: Any
) -> Iterator[tuple[BaseProcess, Connection]]:
    """``target(pipe=..., **kwargs)`` running in a new process; killed on leaving if still alive."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=target, kwargs={**kwargs, "pipe": theirs}, daemon=True)
    process.start()
    try:
        yield process, ours
    finally:
        if process.is_alive():
            process.kill()
        process.join(join)
