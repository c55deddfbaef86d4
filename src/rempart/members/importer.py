"""Importing a members file (CSV or NDJSON) for one insurer.

Two passes. The first reads the whole file and refuses it, changing nothing, when it is not CSV or
NDJSON, is empty, lacks columns or ends in an incomplete record (a truncated transfer). The second
validates each contract and writes good ones in atomic batches; bad rows are reported with their
line, field and reason and not imported. Rows of one contract (one member number) must be
consecutive; a contract is imported whole or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rempart.audit.disclosures import Operation
from rempart.audit.models import Channel, Outcome
from rempart.audit.service import SYSTEM_ACTOR, Actor, access_event_row, record_accesses
from rempart.config import Settings
from rempart.db import utcnow
from rempart.errors import ImportFileError
from rempart.fields import paris_day
from rempart.insurers.service import insurer_by_amc, products_by_code
from rempart.members.models import Beneficiary, Contract
from rempart.members.service import write_members
from rempart.members.validation import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    MemberRecord,
    RowError,
    RowInvalid,
    check_contract,
    parse_row,
)
from rempart.runtime import Runtime

FileFormat = Literal["csv", "ndjson"]
MAX_REPORTED_ERRORS = 10_000
_SNIFF_BYTES = 8192
# Spreadsheets write "CSV UTF-8" with a byte-order mark before the header; it is not part of it.
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass
class ImportReport:
    reference: str = ""  # the access events' reference for this import
    rows: int = 0
    contracts_created: int = 0
    beneficiaries_created: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    seconds: float = 0.0

    def reject(self, error: RowError) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def detect_format(path: Path) -> FileFormat:
    if not path.is_file():
        raise ImportFileError(f"{path.name}: no such file")
    with path.open("rb") as raw:
        head = raw.read(_SNIFF_BYTES).removeprefix(_UTF8_BOM)
    if not head.strip():
        raise ImportFileError(f"{path.name}: the file is empty")
    if b"\x00" in head:
        raise ImportFileError(f"{path.name}: this is a binary file, not CSV or NDJSON")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if head.lstrip().startswith(b"{"):
        return "ndjson"
    if head.split(b"\n", 1)[0].strip().startswith(b"member_number"):
        return "csv"
    raise ImportFileError(f"{path.name}: not a CSV file with a header line nor NDJSON (one JSON object per line)")


def _text_lines(path: Path) -> io.TextIOWrapper:
    return open(path, encoding="utf-8-sig", errors="strict", newline="")


def _csv_rows(handle: io.TextIOWrapper, name: str) -> Iterator[tuple[int, dict[str, object] | None, str | None]]:
    reader = csv.reader(handle, strict=True)
    header = next(reader, None)
    if not header:
        raise ImportFileError(f"{name}: the file is empty")
    header = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in header and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ImportFileError(f"{name}: the header lacks the column(s) {', '.join(missing)}")
    for values in reader:
        if not values:
            continue
        if len(values) != len(header):
            yield reader.line_num, None, f"has {len(values)} fields, the header has {len(header)}"
        else:
            yield reader.line_num, dict(zip(header, values, strict=True)), None


def _ndjson_rows(handle: io.TextIOWrapper) -> Iterator[tuple[int, dict[str, object] | None, str | None]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            row = None
        if isinstance(row, dict):
            yield number, row, None
        else:
            yield number, None, "is not a JSON object"


def _rows(path: Path, fmt: FileFormat) -> Iterator[tuple[int, dict[str, object] | None, str | None]]:
    """(line number, row or None, structural problem or None) for every record."""
    with _text_lines(path) as handle:
        yield from _csv_rows(handle, path.name) if fmt == "csv" else _ndjson_rows(handle)


def prescan(path: Path) -> tuple[FileFormat, int]:
    """Refuse an unreadable file before anything is written; return its format and record count."""
    fmt = detect_format(path)
    with path.open("rb") as raw:
        raw.seek(0, io.SEEK_END)
        raw.seek(raw.tell() - 1)
        ends_with_newline = raw.read(1) == b"\n"
    count, last_problem = 0, None
    try:
        for _line, _row, problem in _rows(path, fmt):
            count += 1
            last_problem = problem
    except UnicodeDecodeError:
        raise ImportFileError(f"{path.name}: the file is not UTF-8 text") from None
    except csv.Error:
        raise ImportFileError(f"{path.name}: the CSV is malformed (unbalanced quotes)") from None
    if count == 0:
        raise ImportFileError(f"{path.name}: the file has no member rows")
    if not ends_with_newline or last_problem is not None:
        raise ImportFileError(
            f"{path.name}: the file seems truncated (its last record is incomplete); nothing was imported"
        )
    return fmt, count


# A contract's rows as read: (line, row) pairs, and an error that condemns the whole contract.
RawContract = tuple[list[tuple[int, dict[str, object]]], RowError | None]


@dataclass
class BatchOutcome:
    contracts_created: int = 0
    beneficiaries_created: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


def _raw_contracts(path: Path, fmt: FileFormat, report: ImportReport) -> Iterator[RawContract]:
    """Consecutive rows of one member number; unreadable rows go straight to the report."""
    seen: set[str] = set()
    group: list[tuple[int, dict[str, object]]] = []
    condemned: RowError | None = None
    current: str | None = None
    for line, row, problem in _rows(path, fmt):
        report.rows += 1
        if row is None:
            report.reject(RowError(line, "*", problem or "unreadable"))
            continue
        member_number = str(row.get("member_number") or "").strip()
        if member_number != current:
            if group:
                yield group, condemned
            group, condemned, current = [], None, member_number
            if member_number in seen:
                condemned = RowError(line, "member_number", "appears again after other contracts (duplicate member)")
            seen.add(member_number)
        group.append((line, row))
    if group:
        yield group, condemned


def _validate(
    contract: RawContract, *, product_codes: frozenset[str], today: date
) -> tuple[list[tuple[int, MemberRecord]], list[RowError]]:
    rows, condemned = contract
    records: list[tuple[int, MemberRecord]] = []
    errors: list[RowError] = [condemned] if condemned else []
    for line, row in rows:
        try:
            records.append((line, parse_row(row, product_codes=product_codes, today=today)))
        except RowInvalid as exc:
            errors.append(RowError(line, exc.field, exc.reason))
    if not errors:
        errors = check_contract(records)
    if not errors:
        return records, []
    bad = {e.line for e in errors}
    errors += [
        RowError(line, "contract", "not imported: another row of this contract is invalid")
        for line, _ in rows
        if line not in bad
    ]
    return [], errors


@dataclass(frozen=True)
class _Job:
    insurer_id: uuid.UUID
    product_ids: dict[str, uuid.UUID]
    today: date
    # Who imports, through which channel, under which reference (the access events' ``reference``).
    actor: Actor = SYSTEM_ACTOR
    channel: Channel = Channel.CLI
    reference: str = ""
    # Codes of the products retired (closed to new members) on the day of the import.
    closed: frozenset[str] = frozenset()
    # The successor each retired product names (its code), for the row's refusal.
    successors: Mapping[str, str] = field(default_factory=dict)


def _closed_reason(code: str, successors: Mapping[str, str]) -> str:
    successor = successors.get(code)
    if successor is None:
        return "the product is retired: closed to new members"
    return f"the product is retired: closed to new members, put new members on {successor}"


def _import_batch(runtime: Runtime, job: _Job, contracts: list[RawContract]) -> BatchOutcome:
    """Validate, encrypt and write whole contracts in one transaction."""
    outcome = BatchOutcome()
    batch: list[tuple[int, MemberRecord]] = []
    for contract in contracts:
        records, errors = _validate(contract, product_codes=frozenset(job.product_ids), today=job.today)
        batch += records
        outcome.errors += errors
    if not batch:
        return outcome
    try:
        with runtime.sessions.begin() as session:
            result = write_members(
                session=session,
                keys=runtime.keys,
                insurer_id=job.insurer_id,
                records=[record for _, record in batch],
                product_ids=job.product_ids,
                today=job.today,
                closed=job.closed,
            )
            refused = set(result.conflicts) | set(result.closed)
            _record_import(session, job, {r.member_number for _, r in batch} - refused)
    except IntegrityError:
        # Another import wrote the same contracts meanwhile: this batch changed nothing.
        outcome.errors += [
            RowError(line, "member_number", "conflicts with a contract written meanwhile") for line, _ in batch
        ]
        return outcome
    outcome.contracts_created = result.contracts_created
    outcome.beneficiaries_created = result.beneficiaries_created
    outcome.unchanged = result.unchanged
    conflicting = set(result.conflicts)
    outcome.errors += [
        RowError(line, "member_number", "already exists with another product, kind or dates")
        for line, record in batch
        if record.member_number in conflicting
    ]
    closed = set(result.closed)
    outcome.errors += [
        RowError(line, "product_code", _closed_reason(record.product_code, job.successors))
        for line, record in batch
        if record.member_number in closed
    ]
    return outcome


def _record_import(session: Session, job: _Job, member_numbers: set[str]) -> None:
    """One access event per beneficiary whose contract this batch wrote or confirmed, in the batch's
    transaction (fail closed: if the log refuses, the batch is not written).

    One event per person, not one per batch listing them: the breach computation (Art. 34, "who was
    seen") and each person's access log work on ``beneficiary_id``, and a list inside an event would
    escape both indexes. The cost is one small insert per person through a single ``executemany``
    (measured with ``bench.import_members``). A contract refused as conflicting wrote nothing and
    gets no event. "Which beneficiaries did import job X write" is then an index lookup on
    (reference, beneficiary_id) for operation ``member_import`` (``ix_access_events_import_job``).
    """
    if not member_numbers:
        return
    rows = session.execute(
        select(Beneficiary.id)
        .join(Contract, (Contract.insurer_id == Beneficiary.insurer_id) & (Contract.id == Beneficiary.contract_id))
        .where(Contract.insurer_id == job.insurer_id, Contract.member_number.in_(sorted(member_numbers)))
    ).all()
    now = utcnow()
    record_accesses(
        session,
        [
            access_event_row(
                operation=Operation.MEMBER_IMPORT,
                actor=job.actor,
                channel=job.channel,
                outcome=Outcome.DISCLOSED,
                insurer_id=job.insurer_id,
                beneficiary_id=beneficiary_id,
                reference=job.reference,
                occurred_at=now,
            )
            for (beneficiary_id,) in rows
        ],
    )


# Worker processes build their own runtime (engine, opened keys) once, from the settings.
_worker: tuple[Runtime, _Job] | None = None


def _start_worker(settings: Settings, job: _Job) -> None:
    global _worker  # noqa: PLW0603 - one runtime per worker process, built once
    _worker = (Runtime.build(settings), job)


def _worker_batch(contracts: list[RawContract]) -> BatchOutcome:
    assert _worker is not None
    return _import_batch(_worker[0], _worker[1], contracts)


def _batches(contracts: Iterator[RawContract], size: int) -> Iterator[list[RawContract]]:
    batch: list[RawContract] = []
    rows = 0
    for contract in contracts:
        batch.append(contract)
        rows += len(contract[0])
        if rows >= size:
            yield batch
            batch, rows = [], 0
    if batch:
        yield batch


def import_members(
    *,
    runtime: Runtime,
    path: Path,
    amc_number: str,
    batch_size: int | None = None,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
    actor: Actor = SYSTEM_ACTOR,
    channel: Channel = Channel.CLI,
    reference: str | None = None,
) -> ImportReport:
    """Import a members file. With ``workers`` > 1, batches are validated, encrypted and written by
    that many processes in parallel (each batch still one transaction). Every beneficiary written
    is recorded in the access log under ``reference`` (default: a new id, in the report)."""
    fmt, _count = prescan(path)
    batch_size = batch_size or runtime.settings.import_batch_size
    with runtime.sessions() as session:
        insurer = insurer_by_amc(session, amc_number)
        products = products_by_code(session, insurer.id)
        today = utcnow().date()
        reference = reference or f"import_{uuid.uuid4().hex}"
        job = _Job(
            insurer.id,
            {code: product.id for code, product in products.items()},
            today,
            actor,
            channel,
            reference,
            closed=frozenset(code for code, product in products.items() if product.retired(paris_day(utcnow()))),
            successors={code: p.successor.code for code, p in products.items() if p.successor is not None},
        )
    report = ImportReport(reference=reference)
    started = time.perf_counter()
    batches = _batches(_raw_contracts(path, fmt, report), batch_size)

    def merge(outcome: BatchOutcome) -> None:
        report.contracts_created += outcome.contracts_created
        report.beneficiaries_created += outcome.beneficiaries_created
        report.unchanged += outcome.unchanged
        for error in outcome.errors:
            report.reject(error)
        if on_progress:
            on_progress(report.rows)

    if workers <= 1:
        for batch in batches:
            merge(_import_batch(runtime, job, batch))
    else:
        context = multiprocessing.get_context("spawn")  # no inherited connections or locks
        with context.Pool(workers, initializer=_start_worker, initargs=(runtime.settings, job)) as pool:
            for outcome in pool.imap_unordered(_worker_batch, batches, chunksize=1):
                merge(outcome)
    report.errors.sort(key=lambda e: e.line)
    report.seconds = time.perf_counter() - started
    return report
