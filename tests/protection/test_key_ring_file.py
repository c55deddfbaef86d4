"""The key-encryption key ring file is replaced whole or not at all: a write that fails midway (a full
disk) leaves the previous ring as it was, and every insurer key it wraps still opens."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest

from rempart.protection.kek import LocalKeyRing, write_private


class _DiskFull:
    """A file that takes half of what is written to it, then reports the disk full."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle

    def __enter__(self) -> _DiskFull:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.handle.close()

    def write(self, text: str) -> int:
        self.handle.write(text[: len(text) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        self.handle.flush()

    def fileno(self) -> int:
        return self.handle.fileno()


def test_a_ring_write_that_fails_midway_leaves_the_old_ring_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = tmp_path / "kek.json"
    write_private(ring, LocalKeyRing.new_document("kek-old"))
    before = ring.read_text()
    real_fdopen = os.fdopen

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> _DiskFull:
        return _DiskFull(real_fdopen(fd, *args, **kwargs))

    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(OSError, match="No space left"):
        LocalKeyRing.add_key(ring)  # a new key-encryption key, written over the ring
    monkeypatch.undo()

    assert ring.read_text() == before
    assert LocalKeyRing.from_document(ring.read_text()).active_id == "kek-old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kek.json"]  # no half-written file left


def test_a_ring_written_again_is_whole_and_owner_only(tmp_path: Path) -> None:
    ring = tmp_path / "keys" / "kek.json"
    write_private(ring, LocalKeyRing.new_document("kek-old"))
    ring.chmod(0o644)
    new_id = LocalKeyRing.add_key(ring)

    assert LocalKeyRing.from_document(ring.read_text()).active_id == new_id
    assert stat.S_IMODE(ring.stat().st_mode) == 0o600
    assert sorted(p.name for p in ring.parent.iterdir()) == ["kek.json"]
