"""Key rotation without downtime: ``rempart keys rotate --insurer AMC``.

1. Re-wrap the insurer's keys under the active key-encryption key and add new data and index keys;
   the old ones become "retiring": they still open values, new values use the new keys, and
   rights checks match a blind index under either key.
2. Wait out the key cache, then re-encrypt and re-index every beneficiary in batches, one short transaction each.
   This starts only once every process has reloaded its keys, so none still writes under the old
   key or misses a row re-indexed under the new one.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select, update

from rempart.db import FileLeaseTaken, ServerLease, advisory_key, bind_tenant, file_lease, is_postgresql
from rempart.errors import Conflict
from rempart.insurers.service import insurer_by_amc
from rempart.members.models import Beneficiary
from rempart.protection.service import KEY_CACHE_SECONDS
from rempart.runtime import Runtime

_FIELDS = ("nir", "last_name", "first_name", "birth_date", "marital_status")

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
def _rotation_lock(runtime: Runtime, insurer_id: uuid.UUID) -> Iterator[Callable[[], bool]]:
    """Held from the new keys to the destruction of the old ones; released when the process dies.
    Yields a check of whether the lock is still held (a server-side lock goes with its connection)."""
    url = runtime.engine.url
    if is_postgresql(runtime.engine):
        lease = ServerLease(runtime.engine, advisory_key(_ROTATION_LOCKS, insurer_id))
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


def _reencrypt_batch(runtime: Runtime, insurer_id: uuid.UUID, data_version: int, index_version: int, size: int) -> int:
    with runtime.sessions.begin() as session:
        bind_tenant(session, insurer_id)
        cipher = runtime.keys.cipher(session, insurer_id, fresh=True)
        rows = session.scalars(
            select(Beneficiary)
            .where(
                Beneficiary.insurer_id == insurer_id,
                or_(Beneficiary.data_key_version < data_version, Beneficiary.index_key_version < index_version),
            )
            .order_by(Beneficiary.id)
            .limit(size)
        ).all()
        updates = []
        for row in rows:
            plain = {
                f: cipher.decrypt(getattr(row, f"{f}_enc"), table="beneficiaries", row_id=row.id, column=f)
                for f in _FIELDS
            }
            values: dict[str, object] = {
                f"{f}_enc": cipher.encrypt(v, table="beneficiaries", row_id=row.id, column=f) for f, v in plain.items()
            }
            values["identity_bidx"] = cipher.identity_index(
                plain["nir"], date.fromisoformat(plain["birth_date"]), row.birth_rank
            )
            updates.append(
                {
                    "insurer_id": insurer_id,
                    "id": row.id,
                    "data_key_version": cipher.active_data_version,
                    "index_key_version": cipher.active_index_version,
                    **values,
                }
            )
        session.expunge_all()
        if updates:
            session.execute(update(Beneficiary), updates)
        return len(updates)


def rotate_insurer_keys(
    *,
    runtime: Runtime,
    amc_number: str,
    batch_size: int = 1000,
    grace_seconds: float = KEY_CACHE_SECONDS + 1,
    on_progress: Callable[[int], None] | None = None,
) -> RotationReport:
    with runtime.sessions() as session:
        insurer_id = insurer_by_amc(session, amc_number).id
    with _rotation_lock(runtime, insurer_id) as held:
        return _rotate(
            runtime=runtime,
            insurer_id=insurer_id,
            held=held,
            batch_size=batch_size,
            grace_seconds=grace_seconds,
            on_progress=on_progress,
        )


def _rotate(
    *,
    runtime: Runtime,
    insurer_id: uuid.UUID,
    held: Callable[[], bool],
    batch_size: int,
    grace_seconds: float,
    on_progress: Callable[[int], None] | None,
) -> RotationReport:
    with runtime.sessions.begin() as session:
        rewrapped = runtime.keys.rewrap_all(session, insurer_id)
        data_version, index_version = runtime.keys.start_rotation(session, insurer_id)

    done = 0

    def sweep() -> None:
        nonlocal done
        while count := _reencrypt_batch(runtime, insurer_id, data_version, index_version, batch_size):
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
            destroyed = _destroy_if_swept(runtime, insurer_id, data_version, index_version)
        except _RowsLeft:
            continue  # a writer committed rows under an old key meanwhile: sweep them too
        return RotationReport(insurer_id, data_version, index_version, rewrapped, done, destroyed)


class _RowsLeft(Exception):
    pass


def _destroy_if_swept(runtime: Runtime, insurer_id: uuid.UUID, data_version: int, index_version: int) -> int:
    """Destroy the retired keys, unless a row is still under one of them (then nothing changes).

    A members writer may have loaded the old keys just before its cache expired, and commit after
    the sweep. It locks the key versions it writes under (``KeyService.cipher_for_write``), and the
    UPDATE that marks them destroyed conflicts with that lock: it waits for such a writer to commit.
    Only then are the rows under older versions counted, in the same transaction (PostgreSQL, read
    committed: a statement sees what committed before it started; SQLite: this transaction holds
    the one write lock): any found, and the transaction rolls back and the sweep runs again. A
    writer that comes after this commit finds its keys destroyed and loads the new ones.
    """
    with runtime.sessions.begin() as session:
        destroyed = runtime.keys.destroy_retired(session, insurer_id)  # bound to the insurer, flushed
        left = session.scalar(
            select(func.count())
            .select_from(Beneficiary)
            .where(
                Beneficiary.insurer_id == insurer_id,
                or_(Beneficiary.data_key_version < data_version, Beneficiary.index_key_version < index_version),
            )
        )
        if left:
            raise _RowsLeft  # rolls the destruction back
    return destroyed
