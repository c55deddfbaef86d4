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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from sqlalchemy.exc import IntegrityError

from rempart.db import utcnow
from rempart.errors import ImportFileError
from rempart.insurers.service import insurer_by_amc, products_by_code
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


@dataclass
class ImportReport:
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
        head = raw.read(_SNIFF_BYTES)
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
    return open(path, encoding="utf-8", errors="strict", newline="")


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
        except ValueError:
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


def _contracts(
    path: Path, fmt: FileFormat, *, product_codes: frozenset[str], today: date, report: ImportReport
) -> Iterator[list[tuple[int, MemberRecord]]]:
    """Valid contracts, each the list of its rows; bad rows go to the report."""
    seen: set[str] = set()
    group: list[tuple[int, MemberRecord]] = []
    group_errors: list[RowError] = []
    group_lines: list[int] = []
    current: str | None = None

    def close() -> list[tuple[int, MemberRecord]] | None:
        errors = group_errors + ([] if group_errors else check_contract(group))
        if not errors:
            return list(group)
        bad = {e.line for e in errors}
        for error in errors:
            report.reject(error)
        for line in group_lines:
            if line not in bad:
                report.reject(RowError(line, "contract", "not imported: another row of this contract is invalid"))
        return None

    for line, row, problem in _rows(path, fmt):
        report.rows += 1
        if row is None:
            report.reject(RowError(line, "*", problem or "unreadable"))
            continue
        member_number = str(row.get("member_number") or "").strip()
        if member_number != current:
            if current is not None and (done := close()):
                yield done
            group, group_errors, group_lines = [], [], []
            current = member_number
            if member_number in seen:
                group_errors.append(
                    RowError(line, "member_number", "appears again after other contracts (duplicate member)")
                )
            seen.add(member_number)
        group_lines.append(line)
        try:
            group.append((line, parse_row(row, product_codes=product_codes, today=today)))
        except RowInvalid as exc:
            group_errors.append(RowError(line, exc.field, exc.reason))
    if current is not None and (done := close()):
        yield done


def import_members(
    *,
    runtime: Runtime,
    path: Path,
    amc_number: str,
    batch_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    fmt, _count = prescan(path)
    batch_size = batch_size or runtime.settings.import_batch_size
    with runtime.sessions() as session:
        insurer = insurer_by_amc(session, amc_number)
        products = products_by_code(session, insurer.id)
    report = ImportReport()
    started = time.perf_counter()
    today = utcnow().date()
    batch: list[tuple[int, MemberRecord]] = []

    def flush() -> None:
        if not batch:
            return
        try:
            with runtime.sessions.begin() as session:
                result = write_members(
                    session=session,
                    keys=runtime.keys,
                    insurer_id=insurer.id,
                    records=[record for _, record in batch],
                    products=products,
                    today=today,
                )
        except IntegrityError:
            # Another import wrote the same contracts meanwhile: this batch changed nothing.
            for line, _ in batch:
                report.reject(RowError(line, "member_number", "conflicts with a contract written meanwhile"))
        else:
            report.contracts_created += result.contracts_created
            report.beneficiaries_created += result.beneficiaries_created
            report.unchanged += result.unchanged
            conflicting = set(result.conflicts)
            for line, record in batch:
                if record.member_number in conflicting:
                    report.reject(RowError(line, "member_number", "already exists with another product, kind or dates"))
        if on_progress:
            on_progress(report.rows)
        batch.clear()

    for contract in _contracts(path, fmt, product_codes=frozenset(products), today=today, report=report):
        batch.extend(contract)
        if len(batch) >= batch_size:
            flush()
    flush()
    if on_progress:
        on_progress(report.rows)
    report.seconds = time.perf_counter() - started
    return report
