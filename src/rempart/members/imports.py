"""Members imports through the insurer API: a job per uploaded file, with progress and a report.

The file goes through exactly what ``rempart members import`` does (``rempart.members.importer``):
it is refused whole, before the job exists, when it cannot be read; otherwise rows are validated and
written in atomic batches in the background while the job's counters move. The uploaded file holds
identities in clear, so it is written readable by its owner only and deleted once imported.

A job runs in the web process that received its file, as a background task. When that process dies
(a deploy, a crash, the machine) or the stored file is gone, the job can never finish: whoever reads
it next (its progress, the list) finds it so, reports it failed ("interrupted: upload the file
again") and removes the upload if it is on this machine. What an interrupted job leaves is what any
import guarantees: each contract written whole or not at all, in batches that each commit alone; the
contracts of the batches written before the interruption stay, and the same file uploaded again
writes the others and leaves those unchanged.

How an orphan is recognised: the process working on a job holds a *lease* on it, a lock that is
released by the operating system or the database server, not by the process, when that process
dies: on PostgreSQL a session-level advisory lock on the job's id, held on a connection of its own
(every app process, on every machine, asks the same server); on SQLite, whose database is a file on
one machine, an ``flock`` on the stored upload itself. A job is orphaned when its lease is free. The
lease is taken before the upload is stored and the job row exists, and given back only after the
job's outcome is committed, so a job whose lease is free is one nobody will ever finish. No clock is
read: a heartbeat, or "started more than N minutes ago without progress", needs a bound longer than
any batch can take (a 2 GiB file on a loaded machine, a process the OS paused, a clock that jumped)
and, whatever the bound, either calls a slow live job dead or keeps the insurer waiting that long
for a dead one. A lock is never held by a dead process nor free while its holder lives. Should an
owner lose its lease while alive (its lock connection cut, its upload deleted by hand), the job is
failed by whoever sees it, and the owner, which checks its lease and the job's status after every
batch, stops there: a job reported failed writes nothing more.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rempart.audit.models import ActorKind, Channel
from rempart.audit.service import Actor
from rempart.db import ServerLease, advisory_key, is_postgresql, utcnow
from rempart.errors import ImportFileError, NotFound
from rempart.identity.principal import StaffPrincipal
from rempart.insurers.jobs import ImportStatus, MembersImportJob
from rempart.insurers.models import Insurer
from rempart.logs import get_logger
from rempart.members.importer import ImportReport, import_members, prescan
from rempart.pagination import Cursor, Page, keyset_page
from rempart.runtime import Runtime
from rempart.tenancy import bind_tenant

log = get_logger("rempart.members.imports")

MAX_UPLOAD_BYTES = 2 * 1024**3
MAX_STORED_ERRORS = 1000
UNFINISHED = (ImportStatus.QUEUED, ImportStatus.RUNNING)
INTERRUPTED = (
    "interrupted: upload the file again. Each contract was imported whole or not at all: those "
    "written before the interruption stay, and the same file imported again leaves them unchanged"
)
_SUFFIXES = ("", ".csv", ".ndjson", ".jsonl")


def uploads_folder(runtime: Runtime) -> Path:
    folder = runtime.settings.var_dir / "imports"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def upload_path(runtime: Runtime, job_id: uuid.UUID, suffix: str) -> Path:
    return uploads_folder(runtime) / f"{job_id}{suffix}"


def store_upload(source: IO[bytes], target: IO[bytes], path: Path) -> None:
    """Copy an upload into ``target`` (the file at ``path``), refusing files past ``MAX_UPLOAD_BYTES``."""
    shutil.copyfileobj(source, target, length=1024 * 1024)
    target.flush()
    if target.tell() > MAX_UPLOAD_BYTES:
        path.unlink(missing_ok=True)
        raise ImportFileError("the file is larger than 2 GiB: split it")


# -- leases: who is working on a job (see the module's docstring) ---------------------------------


class _Lease(Protocol):
    def held(self) -> bool:
        """Whether this process still holds the lease (checked after every batch)."""
        ...

    def release(self) -> None: ...


# Two-integer advisory locks are a key space of their own, apart from the claims' bigint locks.
_IMPORT_LOCKS = 0x494D5054  # "IMPT"


def _lock_key(job_id: uuid.UUID) -> tuple[int, int]:
    # 32 bits of a random id: two jobs sharing a key only delay the failing of a dead one.
    return advisory_key(_IMPORT_LOCKS, job_id)


class _FileLease:
    """An ``flock`` on the stored upload, through the descriptor the upload was written with."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd

    @classmethod
    def create(cls, path: Path) -> _FileLease | None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        lease = cls(path, fd)
        if not lease.held():  # a sweep took the new, still unlocked file for an orphan's
            os.close(fd)
            return None
        return lease

    def held(self) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(self.fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        os.close(self.fd)


# The leases this process holds, from the upload until the background task ends.
_leases: dict[uuid.UUID, _Lease] = {}


def _free_file(path: Path) -> int | None:
    """An open descriptor holding ``path``'s flock if no live process holds it, else None."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _lease_free(session: Session, job_id: uuid.UUID) -> bool:
    """PostgreSQL: whether nobody holds the job's lease. If so, this transaction holds the lock until
    it ends, so that no other reader fails the job twice meanwhile."""
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(*_lock_key(job_id)))))


def _remove_orphan_uploads(session: Session, runtime: Runtime) -> None:
    """Remove the uploads on this machine that no live process works on: a process that died while
    receiving a file (before any job row), or the upload of a job another machine found orphaned."""
    folder = runtime.settings.var_dir / "imports"
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        name = path.name.split(".", 1)[0]
        try:
            job_id = uuid.UUID(name)
        except ValueError:
            continue
        if is_postgresql(session):
            if _lease_free(session, job_id):
                path.unlink(missing_ok=True)
        elif (fd := _free_file(path)) is not None:
            try:
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)


def _fail_if_orphaned(session: Session, runtime: Runtime, job: MembersImportJob) -> None:
    """Report a job nobody will finish as failed, and remove its upload (when on this machine)."""
    if job.status not in UNFINISHED:
        return
    held_file: int | None = None
    if is_postgresql(session):
        if not _lease_free(session, job.id):
            return
    else:
        path = _stored_file(runtime, job.id)
        if path is not None:
            held_file = _free_file(path)
            if held_file is None:
                return  # its owner lives (a missing upload means no lease: it cannot finish)
    try:
        # Only if still unfinished: its owner may have committed its outcome since it was read.
        failed = session.execute(
            update(MembersImportJob)
            .where(
                MembersImportJob.insurer_id == job.insurer_id,
                MembersImportJob.id == job.id,
                MembersImportJob.status.in_(UNFINISHED),
            )
            .values(status=ImportStatus.FAILED, failure=INTERRUPTED, finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        _remove_upload(runtime, job.id)
    finally:
        if held_file is not None:
            os.close(held_file)
    session.refresh(job)
    if getattr(failed, "rowcount", 0):
        log.warning("members_import_interrupted", job_id=str(job.id))


# -- the job ------------------------------------------------------------------------------------


def _take_lease(session: Session, runtime: Runtime, job_id: uuid.UUID, path: Path) -> tuple[_Lease, IO[bytes]] | None:
    """Take the job's lease and create its upload file (owner-only); None if the id is taken."""
    if is_postgresql(session):
        lease = ServerLease(runtime.engine, _lock_key(job_id))
        if not lease.take():
            lease.release()
            return None
        try:
            return lease, os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        except BaseException:
            lease.release()
            raise
    file_lease = _FileLease.create(path)
    if file_lease is None:
        return None
    return file_lease, os.fdopen(os.dup(file_lease.fd), "wb")


def start_import(
    *,
    session: Session,
    runtime: Runtime,
    staff: StaffPrincipal,
    source: IO[bytes],
    filename: str,
    now: datetime,
) -> MembersImportJob:
    """Store the file, refuse it whole if unreadable, and queue the job, committed (the caller then
    runs it with ``run_import``). A job whose row could not be committed is abandoned: nobody would
    ever run it or remove its file."""
    bind_tenant(session, staff.insurer_id)
    _remove_orphan_uploads(session, runtime)
    suffix = Path(filename).suffix.lower() if Path(filename).suffix.lower() in (".csv", ".ndjson", ".jsonl") else ""
    for _ in range(3):
        job_id = uuid.uuid4()
        path = upload_path(runtime, job_id, suffix)
        taken = _take_lease(session, runtime, job_id, path)
        if taken is not None:
            break
    else:
        raise RuntimeError("no free import job id")
    lease, target = taken
    _leases[job_id] = lease
    try:
        with target:
            store_upload(source, target, path)
        file_format, rows = prescan(path)
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
        session.commit()
    except ImportFileError as exc:
        abandon(runtime, job_id)
        # The reader names the file it read: here the server's copy, a name the sender never saw.
        raise ImportFileError(exc.detail.removeprefix(f"{path.name}: ")) from None
    except BaseException:
        abandon(runtime, job_id)  # identities in clear: never left behind
        raise
    return job


def abandon(runtime: Runtime, job_id: uuid.UUID) -> None:
    """Give up a job this process took but will not run: its upload goes, then its lease."""
    _remove_upload(runtime, job_id)
    lease = _leases.pop(job_id, None)
    if lease is not None:
        lease.release()


def _stored_file(runtime: Runtime, job_id: uuid.UUID) -> Path | None:
    for suffix in _SUFFIXES:
        path = upload_path(runtime, job_id, suffix)
        if path.exists():
            return path
    return None


def _remove_upload(runtime: Runtime, job_id: uuid.UUID) -> None:
    for suffix in _SUFFIXES:
        upload_path(runtime, job_id, suffix).unlink(missing_ok=True)


def _set(runtime: Runtime, job: MembersImportJob, when: Iterable[ImportStatus], **values: object) -> bool:
    """Update the job if its status is still one of ``when`` (a job reported failed by another
    process is never taken back); whether it was."""
    with runtime.sessions.begin() as session:
        bind_tenant(session, job.insurer_id)
        result = session.execute(
            update(MembersImportJob)
            .where(
                MembersImportJob.insurer_id == job.insurer_id,
                MembersImportJob.id == job.id,
                MembersImportJob.status.in_(list(when)),
            )
            .values(**values)
        )
        return bool(getattr(result, "rowcount", 0))


class _Interrupted(Exception):
    """The lease is lost or the job was reported failed meanwhile: stop after this batch."""


def run_import(
    runtime: Runtime, *, insurer_id: uuid.UUID, job_id: uuid.UUID, channel: Channel = Channel.INSURER_API
) -> None:
    """Run a queued job to its end (in the background: every failure lands in the job's record).
    ``channel`` is where the file came from (the insurer's API, or its back office's upload page):
    the access log says so to every person the import wrote."""
    lease = _leases.get(job_id)
    if lease is None:
        return  # not a job this process took
    try:
        _run(runtime, lease, insurer_id=insurer_id, job_id=job_id, channel=channel)
    finally:
        abandon(runtime, job_id)  # the outcome is committed: the upload goes, then the lease


def _run(runtime: Runtime, lease: _Lease, *, insurer_id: uuid.UUID, job_id: uuid.UUID, channel: Channel) -> None:
    with runtime.sessions() as session:
        bind_tenant(session, insurer_id)
        job = session.get_one(MembersImportJob, (insurer_id, job_id))
        amc_number = session.scalar(select(Insurer.amc_number).where(Insurer.id == insurer_id))
    path = _stored_file(runtime, job.id)
    if path is None or not lease.held():
        _set(runtime, job, UNFINISHED, status=ImportStatus.FAILED, failure=INTERRUPTED, finished_at=utcnow())
        return
    if not _set(runtime, job, [ImportStatus.QUEUED], status=ImportStatus.RUNNING):
        return  # reported failed meanwhile

    def progress(rows: int) -> None:
        if not (lease.held() and _set(runtime, job, [ImportStatus.RUNNING], rows_done=min(rows, job.rows_total))):
            raise _Interrupted

    try:
        report = import_members(
            runtime=runtime,
            path=path,
            amc_number=str(amc_number),
            # The staff member who uploaded the file is who wrote these people's data.
            actor=Actor(ActorKind.INSURER_STAFF, id=job.started_by),
            channel=channel,
            reference=str(job.id),
            on_progress=progress,
        )
    except Exception as exc:  # noqa: BLE001  (a background job reports every failure in its record)
        log.error("members_import_failed", job_id=str(job.id), error_type=type(exc).__name__)
        if isinstance(exc, _Interrupted) or not lease.held() or not path.exists():
            detail = INTERRUPTED
        elif isinstance(exc, ImportFileError):
            detail = exc.detail.removeprefix(f"{path.name}: ")  # the server's copy: a name the sender never saw
        else:
            detail = "the import stopped on an internal error"
        _set(runtime, job, UNFINISHED, status=ImportStatus.FAILED, failure=detail[:300], finished_at=utcnow())
    else:
        _finish(runtime, job, report)


def _finish(runtime: Runtime, job: MembersImportJob, report: ImportReport) -> None:
    errors = [{"line": e.line, "field": e.field, "reason": e.reason} for e in report.errors[:MAX_STORED_ERRORS]]
    _set(
        runtime,
        job,
        [ImportStatus.RUNNING],
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


def import_job(session: Session, *, runtime: Runtime, staff: StaffPrincipal, job_id: uuid.UUID) -> MembersImportJob:
    """A job, reported failed first if nobody can finish it any more (committed)."""
    bind_tenant(session, staff.insurer_id)
    job = session.scalar(
        select(MembersImportJob).where(MembersImportJob.insurer_id == staff.insurer_id, MembersImportJob.id == job_id)
    )
    if job is None:
        raise NotFound("no import job with this id")
    _fail_if_orphaned(session, runtime, job)
    _remove_orphan_uploads(session, runtime)
    session.commit()
    return job


def import_jobs(
    session: Session, *, runtime: Runtime, staff: StaffPrincipal, limit: int = 50
) -> Sequence[MembersImportJob]:
    """The first page of ``import_jobs_page``."""
    return import_jobs_page(session, runtime=runtime, staff=staff, limit=limit).items


def import_jobs_page(
    session: Session, *, runtime: Runtime, staff: StaffPrincipal, limit: int = 50, cursor: Cursor | None = None
) -> Page[MembersImportJob]:
    """The jobs, newest first, a page at a time (after ``cursor``), those nobody can finish any more
    reported failed first (committed)."""
    bind_tenant(session, staff.insurer_id)
    statement = select(MembersImportJob).where(MembersImportJob.insurer_id == staff.insurer_id)
    page = keyset_page(
        session,
        statement,
        at=MembersImportJob.created_at,
        row_id=MembersImportJob.id,
        cursor=cursor,
        limit=limit,
        descending=True,
    )
    for job in page.items:
        _fail_if_orphaned(session, runtime, job)
    _remove_orphan_uploads(session, runtime)
    session.commit()
    return page
