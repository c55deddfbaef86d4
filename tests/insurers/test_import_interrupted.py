"""A members import whose app process died (a deploy, a crash) or whose stored upload is gone can never
finish: the insurer polling it is told so ("failed", "interrupted: upload the file again") instead of
waiting for ever, the upload with its identities in clear is removed, and what was written is whole
contracts only, which the same file uploaded again completes. A job another live process is still
working on is never taken for one of these.

The owning process is real (``tests.insurers.import_owner``): killed, it takes its database
connections, locks and open files with it, as a restart does."""

from __future__ import annotations

import io
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.db import utcnow
from rempart.identity.permissions import Role
from rempart.identity.principal import StaffPrincipal
from rempart.members import imports
from rempart.members.models import Beneficiary, Contract
from rempart.members.synth import synth_members, write_file
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.eligibility.world import World, build_world
from tests.factories import TODAY
from tests.insurers.import_owner import import_owner
from tests.insurers.test_insurer_api import staff
from tests.support.portal import PortalUser

INTERRUPTED = "interrupted: upload the file again"
UNFINISHED = ("queued", "running")


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=4)
    population.extend(built.records)
    return built


def members_csv(population: list[MemberRecord], contracts: int) -> tuple[bytes, list[MemberRecord]]:
    records = list(
        synth_members(count=contracts, seed=23, product_codes=["CONFORT", "PREMIUM"], today=TODAY, first_number=5000)
    )
    population.extend(records)
    buffer = io.StringIO()
    write_file(iter(records), buffer, fmt="csv")
    return buffer.getvalue().encode(), records


def uploads(runtime: Runtime) -> list[Path]:
    folder = runtime.settings.var_dir / "imports"
    return sorted(folder.iterdir()) if folder.exists() else []


def settled(admin: PortalUser, url: str, seconds: float = 10.0) -> dict[str, Any]:
    """Poll as an insurer's tool does, until the job is over (or give up and return what it says)."""
    deadline = time.monotonic() + seconds
    while True:
        job: dict[str, Any] = admin.get(url).json()
        if job["status"] not in UNFINISHED or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def written(runtime: Runtime, records: list[MemberRecord]) -> Counter[str]:
    """Beneficiaries in the database per member number of the file."""
    numbers = sorted({r.member_number for r in records})
    with runtime.sessions() as session:
        of_contract = (Beneficiary.insurer_id == Contract.insurer_id) & (Beneficiary.contract_id == Contract.id)
        rows = session.scalars(
            select(Contract.member_number).join(Beneficiary, of_contract).where(Contract.member_number.in_(numbers))
        )
        return Counter(rows)


def test_a_job_whose_process_died_before_running_it_is_failed_and_its_upload_removed(
    app: FastAPI, runtime: Runtime, world: World, population: list[MemberRecord]
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/members-imports"
    content, records = members_csv(population, contracts=3)

    with import_owner(runtime.settings, insurer_id=world.insurer.id, account_id=uuid.uuid4(), content=content) as owner:
        job_id = owner.expect("queued")
        owner.kill()  # restarted before its background task ran

    job = settled(admin, f"{base}/{job_id}")
    assert job["status"] == "failed", job
    assert job["failure"].startswith(INTERRUPTED)
    assert job["finished_at"] is not None
    assert uploads(runtime) == []
    assert [(j["job_id"], j["status"]) for j in admin.get(base).json()["jobs"]] == [(str(job_id), "failed")]
    assert written(runtime, records) == Counter()

    again = admin.post(base, files={"file": ("adherents.csv", content, "text/csv")})
    assert again.status_code == 202, again.text
    report = admin.get(f"{base}/{again.json()['job_id']}").json()
    assert (report["status"], report["contracts_created"], report["rejected"]) == ("done", 3, 0)
    assert uploads(runtime) == []


def test_a_job_whose_process_died_mid_import_is_failed_and_left_whole_contracts_the_same_file_completes(
    app: FastAPI, runtime: Runtime, world: World, population: list[MemberRecord]
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/members-imports"
    content, records = members_csv(population, contracts=8)
    settings = runtime.settings.model_copy(update={"import_batch_size": 2})
    families = Counter(r.member_number for r in records)

    with import_owner(
        settings, insurer_id=world.insurer.id, account_id=uuid.uuid4(), content=content, pause_after=2
    ) as owner:
        job_id = owner.expect("queued")
        owner.say("run")
        owner.expect("paused")  # two batches written
        alive = [admin.get(f"{base}/{job_id}").json() for _ in range(3)]
        owner.kill()

    # While its process lived the job was running, not failed.
    assert [j["status"] for j in alive] == ["running"] * 3
    job = settled(admin, f"{base}/{job_id}")
    assert job["status"] == "failed", job
    assert job["failure"].startswith(INTERRUPTED)
    assert uploads(runtime) == []
    before = written(runtime, records)
    assert 0 < len(before) < len(families)
    assert all(before[number] == families[number] for number in before), "a contract was half written"

    again = admin.post(base, files={"file": ("adherents.csv", content, "text/csv")})
    report = admin.get(f"{base}/{again.json()['job_id']}").json()
    assert report["status"] == "done", report
    assert report["contracts_created"] == len(families) - len(before)
    assert report["unchanged"] == sum(before.values())
    assert written(runtime, records) == families


def test_a_job_another_live_process_works_on_is_never_failed(
    app: FastAPI, runtime: Runtime, world: World, population: list[MemberRecord]
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/members-imports"
    content, records = members_csv(population, contracts=4)
    settings = runtime.settings.model_copy(update={"import_batch_size": 2})

    with import_owner(
        settings, insurer_id=world.insurer.id, account_id=uuid.uuid4(), content=content, pause_after=1
    ) as owner:
        job_id = owner.expect("queued")
        queued = [admin.get(f"{base}/{job_id}").json()["status"] for _ in range(3)]
        listed = [j["status"] for j in admin.get(base).json()["jobs"]]
        kept = len(uploads(runtime))
        owner.say("run")
        owner.expect("paused")
        running = [admin.get(f"{base}/{job_id}").json()["status"] for _ in range(3)]
        owner.say("go")
        owner.expect("done")

    assert (queued, listed, kept) == (["queued"] * 3, ["queued"], 1)
    assert running == ["running"] * 3
    job = admin.get(f"{base}/{job_id}").json()
    assert (job["status"], job["rows_done"], job["rejected"], job["failure"]) == ("done", len(records), 0, None)
    assert job["contracts_created"] == 4
    assert uploads(runtime) == []


def test_a_job_whose_stored_upload_is_gone_is_failed_instead_of_queued_for_ever(
    app: FastAPI, runtime: Runtime, world: World, population: list[MemberRecord]
) -> None:
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/members-imports"
    content, records = members_csv(population, contracts=2)
    uploader = StaffPrincipal(
        insurer_id=world.insurer.id, account_id=uuid.uuid4(), roles=frozenset(), permissions=frozenset()
    )
    with runtime.sessions() as session:
        job = imports.start_import(
            session=session,
            runtime=runtime,
            staff=uploader,
            source=io.BytesIO(content),
            filename="adherents.csv",
            now=utcnow(),
        )
        session.commit()
    for path in uploads(runtime):  # the server's var folder wiped (a new container, a cleanup)
        path.unlink()

    imports.run_import(runtime, insurer_id=world.insurer.id, job_id=job.id)  # the background task

    report = admin.get(f"{base}/{job.id}").json()
    assert report["status"] == "failed", report
    assert report["failure"].startswith(INTERRUPTED)
    assert written(runtime, records) == Counter()
