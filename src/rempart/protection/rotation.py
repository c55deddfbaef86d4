"""Key rotation without downtime (``rempart keys rotate --insurer AMC``, ``rempart.members.key_rotation``).

1. Re-wrap the insurer's keys under the active key-encryption key and add new data and index keys;
   the old ones become "retiring": they still open values, new values use the new keys, and
   rights checks match a blind index under either key.
2. Wait out the key cache, then re-encrypt and re-index every row under the old keys in batches, one
   short transaction each. This starts only once every process has reloaded its keys, so none still
   writes under the old key or misses a row re-indexed under the new one. Which rows those are, and
   how one is re-encrypted, the domain that owns them says (``EncryptedRows``; members: its
   beneficiaries): the crypto layer imports no domain built on it.
3. Destroy the retired keys: their wrapped material is erased and opens nothing any more. In the
   same transaction, rows still under an older version (a writer's batch, encrypted under keys it
   loaded before the rotation, committed after the sweep) are counted: if any, nothing is destroyed
   and the sweep runs again. Writers lock their key versions until they commit, so that none can
   commit rows under a key this step is destroying (``KeyService.cipher_for_write``).

Crash safety: each step commits on its own and leaves a state every process can read. Step 1 is one
transaction; a batch decrypts, re-encrypts and re-indexes its rows and moves their versions in one
transaction; step 3 runs only after a sweep found no row left under an older version. A rotation
that dies before step 3 leaves the old keys retiring, so every row still opens and matches; running
it again retires every live key, adds newer ones and sweeps every row under any older version.

One rotation of an insurer at a time: a second one would retire the first one's new key and the
first would then destroy it under the rows it had already re-encrypted. The rotation holds a lock
that dies with its process (PostgreSQL: a session advisory lock on a connection of its own; SQLite:
an ``flock`` next to the database file) from step 1 to step 3; another rotation of the same insurer
is refused meanwhile.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from rempart.db import FileLeaseTaken, ServerLease, advisory_key, file_lease, is_postgresql
from rempart.errors import Conflict
from rempart.protection.service import InsurerCipher, KeyService
from rempart.tenancy import bind_tenant

# Two-integer advisory locks are a key space of their own ("ROTA"), apart from other domains' locks.
_ROTATION_LOCKS = 0x524F5441
# SQLite without a file (one process): the rotations of this process.
_in_process: dict[uuid.UUID, threading.Lock] = {}
_in_process_guard = threading.Lock()
_ALREADY_RUNNING = "a key rotation of this insurer is already running: wait for it to finish"
_LOST_LOCK = "the key rotation lost its lock (its database connection closed): run it again"


def _always() -> bool:
    return True


@contextmanager
def _rotation_lock(engine: Engine, insurer_id: uuid.UUID) -> Iterator[Callable[[], bool]]:
    """Held from the new keys to the destruction of the old ones; released when the process dies.
    Yields a check of whether the lock is still held (a server-side lock goes with its connection)."""
    url = engine.url
    if is_postgresql(engine):
        lease = ServerLease(engine, advisory_key(_ROTATION_LOCKS, insurer_id))
        try:
            if not lease.take():
                raise Conflict(_ALREADY_RUNNING)
            yield lease.held
        finally:
            lease.release()
    elif url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        try:
            with file_lease(f"{url.database}-keys-{insurer_id}.lock"):
                yield _always
        except FileLeaseTaken:
            raise Conflict(_ALREADY_RUNNING) from None
    else:
        with _in_process_guard:
            lock = _in_process.setdefault(insurer_id, threading.Lock())
        if not lock.acquire(blocking=False):
            raise Conflict(_ALREADY_RUNNING)
        try:
            yield _always
        finally:
            lock.release()


@dataclass
class RotationReport:
    insurer_id: uuid.UUID
    data_version: int
    index_version: int
    keys_rewrapped: int
    rows_reencrypted: int
    keys_destroyed: int


class EncryptedRows(Protocol):
    """The rows a domain keeps encrypted under an insurer's keys (members: its beneficiaries).

    A row is behind when its data key version is older than ``data_version`` or its index key
    version older than ``index_version``. Both are called in a transaction of the rotation, bound
    to the insurer; neither commits.
    """

    def reencrypt_behind(
        self, session: Session, cipher: InsurerCipher, *, data_version: int, index_version: int, limit: int
    ) -> int:
        """Re-encrypt and re-index up to ``limit`` rows behind under the cipher's active keys, and
        move their versions; how many."""
        ...

    def count_behind(self, session: Session, insurer_id: uuid.UUID, *, data_version: int, index_version: int) -> int:
        """How many of the insurer's rows are still behind."""
        ...


@dataclass(frozen=True)
class CombinedRows:
    """The rows of several domains under the same insurer's keys, swept one domain after another."""

    parts: Sequence[EncryptedRows]

    def reencrypt_behind(
        self, session: Session, cipher: InsurerCipher, *, data_version: int, index_version: int, limit: int
    ) -> int:
        done = 0
        for part in self.parts:
            if done >= limit:
                break
            done += part.reencrypt_behind(
                session, cipher, data_version=data_version, index_version=index_version, limit=limit - done
            )
        return done

    def count_behind(self, session: Session, insurer_id: uuid.UUID, *, data_version: int, index_version: int) -> int:
        return sum(
            part.count_behind(session, insurer_id, data_version=data_version, index_version=index_version)
            for part in self.parts
        )


@dataclass
class _Rotation:
    """One rotation of one insurer's keys over the rows under them."""

    sessions: sessionmaker[Session]
    keys: KeyService
    insurer_id: uuid.UUID
    rows: EncryptedRows

    def reencrypt_batch(self, data_version: int, index_version: int, size: int) -> int:
        with self.sessions.begin() as session:
            bind_tenant(session, self.insurer_id)
            cipher = self.keys.cipher(session, self.insurer_id, fresh=True)
            return self.rows.reencrypt_behind(
                session, cipher, data_version=data_version, index_version=index_version, limit=size
            )

    def destroy_if_swept(self, data_version: int, index_version: int) -> int:
        """Destroy the retired keys, unless a row is still under one of them (then nothing changes).

        A members writer may have loaded the old keys just before its cache expired, and commit after
        the sweep. It locks the key versions it writes under (``KeyService.cipher_for_write``), and the
        UPDATE that marks them destroyed conflicts with that lock: it waits for such a writer to commit.
        Only then are the rows under older versions counted, in the same transaction (PostgreSQL, read
        committed: a statement sees what committed before it started; SQLite: this transaction holds
        the one write lock): any found, and the transaction rolls back and the sweep runs again. A
        writer that comes after this commit finds its keys destroyed and loads the new ones.
        """
        with self.sessions.begin() as session:
            destroyed = self.keys.destroy_retired(session, self.insurer_id)  # bound to the insurer, flushed
            left = self.rows.count_behind(
                session, self.insurer_id, data_version=data_version, index_version=index_version
            )
            if left:
                raise _RowsLeft  # rolls the destruction back
        return destroyed


def rotate_keys(
    *,
    engine: Engine,
    sessions: sessionmaker[Session],
    keys: KeyService,
    insurer_id: uuid.UUID,
    rows: EncryptedRows,
    batch_size: int,
    grace_seconds: float,
    on_progress: Callable[[int], None] | None = None,
) -> RotationReport:
    """Rotate the insurer's keys and re-encrypt ``rows`` under the new ones; ``grace_seconds`` must
    outlast the key cache (``KEY_CACHE_SECONDS``) unless no other process uses the keys."""
    with _rotation_lock(engine, insurer_id) as held:
        return _rotate(
            rotation=_Rotation(sessions=sessions, keys=keys, insurer_id=insurer_id, rows=rows),
            held=held,
            batch_size=batch_size,
            grace_seconds=grace_seconds,
            on_progress=on_progress,
        )


def _rotate(
    *,
    rotation: _Rotation,
    held: Callable[[], bool],
    batch_size: int,
    grace_seconds: float,
    on_progress: Callable[[int], None] | None,
) -> RotationReport:
    insurer_id = rotation.insurer_id
    with rotation.sessions.begin() as session:
        rewrapped = rotation.keys.rewrap_all(session, insurer_id)
        data_version, index_version = rotation.keys.start_rotation(session, insurer_id)

    done = 0

    def sweep() -> None:
        nonlocal done
        while count := rotation.reencrypt_batch(data_version, index_version, batch_size):
            done += count
            if not held():  # another rotation may have started: leave every key to it
                raise Conflict(_LOST_LOCK)
            if on_progress:
                on_progress(done)

    if grace_seconds > 0:
        # Every process reloads its keys within KEY_CACHE_SECONDS: after this, all of them encrypt
        # under the new key and match blind indexes under both, so re-indexing a row never hides it.
        time.sleep(grace_seconds)
    while True:
        sweep()
        if not held():  # destroying now could destroy another rotation's key under its rows
            raise Conflict(_LOST_LOCK)
        try:
            destroyed = rotation.destroy_if_swept(data_version, index_version)
        except _RowsLeft:
            continue  # a writer committed rows under an old key meanwhile: sweep them too
        return RotationReport(insurer_id, data_version, index_version, rewrapped, done, destroyed)


class _RowsLeft(Exception):
    pass
