"""A members write racing a key rotation loses no one: a batch that loaded its keys before the rotation
and writes after it destroyed the old ones, and a batch whose rows under the retiring key are not yet
committed when the rotation comes to destroy it, both leave every member opening and found."""

from __future__ import annotations

import threading
import time
import uuid

from sqlalchemy import select

from rempart.config import Settings
from rempart.members.key_rotation import rotate_insurer_keys
from rempart.members.models import Beneficiary
from rempart.members.service import write_members
from rempart.protection.models import KeyPurpose, KeyState
from rempart.runtime import Runtime
from rempart.tenancy import bind_tenant
from tests.factories import TODAY, load_members, make_insurer, population
from tests.protection.rotation_owner import rotation_process
from tests.protection.test_rotation_crash import _everyone_opens_and_is_found, _key_versions, _wait_for


def _versions(runtime: Runtime, insurer_id: uuid.UUID) -> set[tuple[int, int]]:
    with runtime.sessions() as session:
        bind_tenant(session, insurer_id)
        rows = session.execute(select(Beneficiary.data_key_version, Beneficiary.index_key_version))
        return {(data, index) for data, index in rows}


def test_a_batch_that_loaded_its_keys_before_a_whole_rotation_writes_under_the_new_keys(
    runtime: Runtime, settings: Settings
) -> None:
    insurer = make_insurer(runtime)
    records = population(6)
    load_members(runtime, insurer, records)
    late = population(4, seed=11, first_number=500)
    loaded, go = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def importer_batch() -> None:
        try:
            with runtime.sessions.begin() as session:
                bind_tenant(session, insurer.id)
                runtime.keys.cipher(session, insurer.id)  # the batch's keys: version 1, cached for 30 s
                loaded.set()
                assert go.wait(60)
                write_members(session=session, keys=runtime.keys, insurer_id=insurer.id, records=late, today=TODAY)
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            failures.append(exc)

    writer = threading.Thread(target=importer_batch)
    writer.start()
    assert loaded.wait(30)
    # Another process rotates with no grace, sweeps every row and destroys version 1.
    other = Runtime.build(settings)
    try:
        report = rotate_insurer_keys(runtime=other, amc_number=insurer.amc_number, batch_size=4, grace_seconds=0)
    finally:
        other.close()
    assert report.keys_destroyed == 2
    go.set()
    writer.join(60)
    assert failures == []

    # The late batch's members were written under the key that was destroyed: no one could open them.
    _everyone_opens_and_is_found(settings, insurer, records + late)
    assert _versions(runtime, insurer.id) == {(2, 2)}


def test_rows_under_a_retiring_key_not_yet_committed_hold_back_its_destruction(
    runtime: Runtime, settings: Settings
) -> None:
    insurer = make_insurer(runtime)
    records = population(12)
    load_members(runtime, insurer, records)
    late = population(4, seed=11, first_number=500)
    with runtime.sessions() as session:
        runtime.keys.cipher(session, insurer.id)  # this process's keys: version 1, cached for 30 s

    with rotation_process(settings, insurer.amc_number, batch_size=1000, grace=0, pause_after=1) as rotator:
        rotator.wait_paused()  # version 1 is retiring, version 2 active, every row committed so far moved
        assert (KeyPurpose.DATA, 1, KeyState.RETIRING) in _key_versions(runtime, insurer)
        with runtime.sessions.begin() as session:
            # Written under version 1 (still in this process's cache), not committed yet.
            write_members(session=session, keys=runtime.keys, insurer_id=insurer.id, records=late, today=TODAY)
            rotator.go()
            # Meanwhile the rotation finds no row left under version 1 and comes to destroy it
            # (SQLite: it waits for this transaction's write lock, for less than its 10 s busy timeout).
            time.sleep(1.5)
        rotator.wait_done()

    _everyone_opens_and_is_found(settings, insurer, records + late)
    assert _versions(runtime, insurer.id) == {(2, 2)}
    _wait_for(lambda: (KeyPurpose.DATA, 1, KeyState.DESTROYED) in _key_versions(runtime, insurer), "not destroyed")
