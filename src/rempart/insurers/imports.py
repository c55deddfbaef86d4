"""Members imports through the insurer API: a job per uploaded file, with progress and a report.

The file goes through exactly what ``rempart members import`` does (``rempart.members.importer``):
it is refused whole, before the job exists, when it cannot be read; otherwise rows are validated and
written in atomic batches in the background while the job's counters move. The uploaded file holds
identities in clear, so it is written readable by its owner only and deleted once imported.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rempart.audit.models import ActorKind, Channel
from rempart.audit.service import Actor
from rempart.db import utcnow
from rempart.errors import ImportFileError, NotFound
from rempart.identity.principal import StaffPrincipal
from rempart.identity.rls import bind_tenant
from rempart.insurers.jobs import ImportStatus, MembersImportJob
from rempart.insurers.models import Insurer
from rempart.logs import get_logger
from rempart.members.importer import ImportReport, import_members, prescan
from rempart.runtime import Runtime

log = get_logger("rempart.insurers.imports")

MAX_UPLOAD_BYTES = 2 * 1024**3
MAX_STORED_ERRORS = 1000


def upload_path(runtime: Runtime, job_id: uuid.UUID, suffix: str) -> Path:
    folder = runtime.settings.var_dir / "imports"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder / f"{job_id}{suffix}"


def store_upload(source: IO[bytes], path: Path) -> None:
    """Copy an upload to ``path`` (owner-only), refusing files past ``MAX_UPLOAD_BYTES``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as target:
        shutil.copyfileobj(source, target, length=1024 * 1024)
        if target.tell() > MAX_UPLOAD_BYTES:
            target.close()
            path.unlink(missing_ok=True)
            raise ImportFileError("the file is larger than 2 GiB: split it")


def start_import(
    *,
    session: Session,
    runtime: Runtime,
    staff: StaffPrincipal,
    source: IO[bytes],
    filename: str,
    now: datetime,
) -> MembersImportJob:
    """Store the file, refuse it whole if unreadable, and queue the job (the caller runs it)."""
    bind_tenant(session, staff.insurer_id)
    job_id = uuid.uuid4()
    suffix = Path(filename).suffix.lower() if Path(filename).suffix.lower() in (".csv", ".ndjson", ".jsonl") else ""
    path = upload_path(runtime, job_id, suffix)
    store_upload(source, path)
    try:
        file_format, rows = prescan(path)
    except ImportFileError as exc:
        path.unlink(missing_ok=True)
        # The reader names the file it read: here the server's copy, a name the sender never saw.
        raise ImportFileError(exc.detail.removeprefix(f"{path.name}: ")) from None
    except BaseException:
        path.unlink(missing_ok=True)  # identities in clear: never left behind
        raise
    job = MembersImportJob(
        insurer_id=staff.insurer_id,
        id=job_id,
        status=ImportStatus.QUEUED,
        file_format=file_format,
        rows_total=rows,
        started_by=staff.account_id,
        created_at=now,
    )
    session.add(job)
    session.flush()
    return job


def stored_file(runtime: Runtime, job: MembersImportJob) -> Path:
    for suffix in ("", ".csv", ".ndjson", ".jsonl"):
        path = upload_path(runtime, job.id, suffix)
        if path.exists():
            return path
    raise NotFound("the uploaded file is gone")


def _set(runtime: Runtime, job: MembersImportJob, **values: object) -> None:
    with runtime.sessions.begin() as session:
        bind_tenant(session, job.insurer_id)
        session.execute(
            update(MembersImportJob)
            .where(MembersImportJob.insurer_id == job.insurer_id, MembersImportJob.id == job.id)
            .values(**values)
        )


def run_import(runtime: Runtime, *, insurer_id: uuid.UUID, job_id: uuid.UUID) -> None:
    """Run a queued job to its end (in the background: every failure lands in the job's record)."""
    with runtime.sessions() as session:
        bind_tenant(session, insurer_id)
        job = session.get_one(MembersImportJob, (insurer_id, job_id))
        amc_number = session.scalar(select(Insurer.amc_number).where(Insurer.id == insurer_id))
    path = stored_file(runtime, job)
    _set(runtime, job, status=ImportStatus.RUNNING)
    try:
        report = import_members(
            runtime=runtime,
            path=path,
            amc_number=str(amc_number),
            # The staff member who uploaded the file is who wrote these people's data.
            actor=Actor(ActorKind.INSURER_STAFF, id=job.started_by),
            channel=Channel.INSURER_API,
            reference=str(job.id),
            on_progress=lambda rows: _set(runtime, job, rows_done=min(rows, job.rows_total)),
        )
    except Exception as exc:  # noqa: BLE001  (a background job reports every failure in its record)
        log.error("members_import_failed", job_id=str(job.id), error_type=type(exc).__name__)
        detail = exc.detail if isinstance(exc, ImportFileError) else "the import stopped on an internal error"
        _set(runtime, job, status=ImportStatus.FAILED, failure=detail[:300], finished_at=utcnow())
    else:
        _finish(runtime, job, report)
    finally:
        path.unlink(missing_ok=True)


def _finish(runtime: Runtime, job: MembersImportJob, report: ImportReport) -> None:
    errors = [{"line": e.line, "field": e.field, "reason": e.reason} for e in report.errors[:MAX_STORED_ERRORS]]
    _set(
        runtime,
        job,
        status=ImportStatus.DONE,
        rows_done=min(report.rows, job.rows_total),
        contracts_created=report.contracts_created,
        beneficiaries_created=report.beneficiaries_created,
        unchanged=report.unchanged,
        rejected=report.rejected,
        errors=json.dumps(errors),
        finished_at=utcnow(),
    )
    log.info("members_import_done", job_id=str(job.id), rows=report.rows, rejected=report.rejected)


def import_job(session: Session, *, staff: StaffPrincipal, job_id: uuid.UUID) -> MembersImportJob:
    bind_tenant(session, staff.insurer_id)
    job = session.scalar(
        select(MembersImportJob).where(MembersImportJob.insurer_id == staff.insurer_id, MembersImportJob.id == job_id)
    )
    if job is None:
        raise NotFound("no import job with this id")
    return job


def import_jobs(session: Session, *, staff: StaffPrincipal, limit: int = 50) -> Sequence[MembersImportJob]:
    bind_tenant(session, staff.insurer_id)
    return session.scalars(
        select(MembersImportJob)
        .where(MembersImportJob.insurer_id == staff.insurer_id)
        .order_by(MembersImportJob.created_at.desc())
        .limit(limit)
    ).all()
