"""A key rotation killed at any point (SIGKILL, a real process) loses no one: every member still opens
and a rights check still finds them, before and after the rotation is run again; and a second
rotation of the same insurer cannot run while one is under way."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rempart.cli import app
from rempart.config import Settings, get_settings
from rempart.eligibility.lookup import match_and_cover
from rempart.errors import Conflict
from rempart.insurers.models import Insurer
from rempart.members.key_rotation import rotate_insurer_keys
from rempart.members.models import ENCRYPTED_FIELDS, Beneficiary
from rempart.members.validation import MemberRecord
from rempart.protection.models import InsurerKey, KeyPurpose, KeyState
from rempart.runtime import Runtime
from rempart.tenancy import bind_tenant
from tests.factories import TODAY, load_members, make_insurer, population
from tests.protection.rotation_owner import rotation_process

BATCH = 4


def _everyone_opens_and_is_found(settings: Settings, insurer: Insurer, records: list[MemberRecord]) -> None:
    """What another app process sees: every identity decrypts, and a rights check finds every person."""
    other = Runtime.build(settings)
    try:
        with other.sessions() as session:
            bind_tenant(session, insurer.id)
            cipher = other.keys.cipher(session, insurer.id)
            opened = {
                tuple(
                    cipher.decrypt(getattr(row, f"{f}_enc"), table="beneficiaries", row_id=row.id, column=f)
                    for f in ("nir", "birth_date", "last_name", "first_name")
                )
                for row in session.scalars(select(Beneficiary).where(Beneficiary.insurer_id == insurer.id))
            }
            assert opened == {(r.nir, r.birth_date.isoformat(), r.last_name, r.first_name) for r in records}
            assert ENCRYPTED_FIELDS  # every encrypted field is opened by the rotation's own sweep
            missed = []
            for record in records:
                candidates = cipher.identity_index_candidates(record.nir, record.birth_date, record.birth_rank)
                found, _, _ = match_and_cover(
                    session, insurer_id=insurer.id, member_number=record.member_number, candidates=candidates, day=TODAY
                )
                if found is None or found.beneficiary_id is None:
                    missed.append(record.member_number)
            assert missed == []
    finally:
        other.close()


def _key_versions(runtime: Runtime, insurer: Insurer) -> set[tuple[KeyPurpose, int, KeyState]]:
    with runtime.sessions() as session:
        bind_tenant(session, insurer.id)
        keys = session.scalars(select(InsurerKey).where(InsurerKey.insurer_id == insurer.id))
        return {(k.purpose, k.version, k.state) for k in keys}


def _wait_for(condition: object, what: str, seconds: float = 30.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _rotate_again(runtime: Runtime, insurer: Insurer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMPART_KEK_FILE", str(runtime.settings.kek_file))
    get_settings.cache_clear()
    command = ["keys", "rotate", "--insurer", insurer.amc_number, "--db", runtime.settings.database_url]
    result = CliRunner().invoke(app, [*command, "--grace", "0", "--batch", str(BATCH)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("kill_after_batches", [0, 1, 3], ids=["in-grace", "after-1-batch", "after-3-batches"])
def test_a_rotation_killed_midway_loses_no_one(
    runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch, kill_after_batches: int
) -> None:
    insurer = make_insurer(runtime)
    records = population(12)
    load_members(runtime, insurer, records)
    people = len(records)

    with rotation_process(
        settings,
        insurer.amc_number,
        batch_size=BATCH,
        grace=0 if kill_after_batches else 60,
        pause_after=kill_after_batches or None,
    ) as rotator:
        if kill_after_batches:
            rotator.wait_paused()
        else:  # the new keys are committed and the rotation waits for every process to load them
            _wait_for(lambda: (KeyPurpose.DATA, 2, KeyState.ACTIVE) in _key_versions(runtime, insurer), "no new key")
        assert rotator.process.pid is not None
        os.kill(rotator.process.pid, signal.SIGKILL)
        rotator.process.join(10)
        assert rotator.process.exitcode == -signal.SIGKILL

    with runtime.sessions() as session:
        bind_tenant(session, insurer.id)
        moved = session.scalar(select(func.count()).select_from(Beneficiary).where(Beneficiary.data_key_version == 2))
    assert moved == min(kill_after_batches * BATCH, people)
    # Interrupted: the old keys are retiring, not destroyed, so no one is lost meanwhile.
    assert (KeyPurpose.DATA, 1, KeyState.RETIRING) in _key_versions(runtime, insurer)
    _everyone_opens_and_is_found(settings, insurer, records)

    _rotate_again(runtime, insurer, monkeypatch)

    _everyone_opens_and_is_found(settings, insurer, records)
    assert _key_versions(runtime, insurer) == {
        (purpose, version, KeyState.ACTIVE if version == 3 else KeyState.DESTROYED)
        for purpose in KeyPurpose
        for version in (1, 2, 3)
    }
    with runtime.sessions() as session:
        bind_tenant(session, insurer.id)
        versions = set(session.execute(select(Beneficiary.data_key_version, Beneficiary.index_key_version)))
    assert versions == {(3, 3)}


def test_a_second_rotation_of_the_same_insurer_is_refused_while_one_runs(runtime: Runtime, settings: Settings) -> None:
    insurer = make_insurer(runtime)
    records = population(12)
    load_members(runtime, insurer, records)

    outcome: list[BaseException | None] = []

    def second() -> None:
        try:
            rotate_insurer_keys(runtime=runtime, amc_number=insurer.amc_number, batch_size=BATCH, grace_seconds=2)
        except Exception as exc:  # noqa: BLE001  (what the second operator sees)
            outcome.append(exc)
        else:
            outcome.append(None)

    with rotation_process(settings, insurer.amc_number, batch_size=BATCH, grace=0, pause_after=1) as first:
        first.wait_paused()  # one batch re-encrypted under the first rotation's new key
        thread = threading.Thread(target=second)
        thread.start()
        _wait_for(
            lambda: bool(outcome) or (KeyPurpose.DATA, 3, KeyState.ACTIVE) in _key_versions(runtime, insurer),
            "the second rotation neither started nor was refused",
        )
        first.go()
        first.wait_done()
        thread.join(60)

    # Two rotations at once destroyed the first one's new key under the rows it had re-encrypted.
    _everyone_opens_and_is_found(settings, insurer, records)
    assert len(outcome) == 1
    assert isinstance(outcome[0], Conflict), outcome
    assert "already running" in str(outcome[0].detail)
