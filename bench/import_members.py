"""Members imported per second with all validation and encryption, against the raw insert speed of
the same rows (no validation, no encryption) in the same run: `python -m bench.import_members`.

Raw baseline: contracts, cards and beneficiaries inserted with plaintext in place of ciphertext,
rows prepared in memory beforehand, through `executemany` on SQLite and `COPY` on PostgreSQL: the
database's own ceiling on this machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bench.common import backends, scratch_runtime
from rempart.db import utcnow
from rempart.demo import seed_insurers
from rempart.insurers.service import products_by_code
from rempart.members.importer import import_members
from rempart.members.synth import synth_members, write_members_file
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime

AMC = "88450101"
VIAMEDIS_ALMERYS_PEOPLE = 33_000_000


def _raw_rows(runtime: Runtime, records: list[MemberRecord]) -> dict[str, list[tuple[Any, ...]]]:
    with runtime.sessions() as session:
        insurer_id = next(i.id for i in seed_insurers(runtime) if i.amc_number == AMC)
        products = products_by_code(session, insurer_id)
    now, contracts, cards, people = utcnow(), [], [], []
    contract_ids: dict[str, uuid.UUID] = {}
    for r in records:
        if r.member_number not in contract_ids:
            cid = contract_ids[r.member_number] = uuid.uuid4()
            contracts.append(
                (
                    insurer_id,
                    cid,
                    r.member_number,
                    products[r.product_code].id,
                    r.contract_kind.value,
                    r.contract_start,
                    r.contract_end,
                    now,
                )
            )
            cards.append(
                (
                    insurer_id,
                    uuid.uuid4(),
                    cid,
                    r.member_number,
                    r.contract_start,
                    r.contract_start.replace(year=2099),
                    now,
                )
            )
        people.append(
            (
                insurer_id,
                uuid.uuid4(),
                contract_ids[r.member_number],
                r.role.value,
                r.birth_rank,
                f"{r.nir}{r.birth_date}{r.birth_rank}".encode(),
                1,
                1,
                r.nir.encode(),
                r.last_name.encode(),
                r.first_name.encode(),
                r.birth_date.isoformat().encode(),
                r.marital_status.value.encode(),
                now,
            )
        )
    return {"contracts": contracts, "cards": cards, "beneficiaries": people}


_COLUMNS = {
    "contracts": "insurer_id, id, member_number, product_id, kind, start_date, end_date, created_at",
    "cards": "insurer_id, id, contract_id, member_number, valid_from, valid_to, issued_at",
    "beneficiaries": "insurer_id, id, contract_id, role, birth_rank, identity_bidx, index_key_version, "
    "data_key_version, nir_enc, last_name_enc, first_name_enc, birth_date_enc, marital_status_enc, created_at",
}


def _sqlite_value(value: Any) -> Any:
    """Values as SQLAlchemy stores them on SQLite (UUID as 32 hex digits, dates as ISO text)."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _raw_insert(runtime: Runtime, rows: dict[str, list[tuple[Any, ...]]], backend: str) -> float:
    started = time.perf_counter()
    with runtime.engine.begin() as conn:
        raw = conn.connection.driver_connection
        for table in ("contracts", "cards", "beneficiaries"):
            if backend == "postgresql":
                with raw.cursor() as cur, cur.copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:  # type: ignore[union-attr]
                    for row in rows[table]:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(rows[table][0]))
                raw.executemany(  # type: ignore[union-attr]
                    f"INSERT INTO {table} ({_COLUMNS[table]}) VALUES ({marks})",
                    [tuple(_sqlite_value(v) for v in row) for row in rows[table]],
                )
    return time.perf_counter() - started


def measure(backend: str, path: Path, records: list[MemberRecord], workers: int) -> dict[str, float]:
    with scratch_runtime(backend) as runtime:
        seed_insurers(runtime)
        report = import_members(runtime=runtime, path=path, amc_number=AMC, workers=workers)
        if report.rejected or report.beneficiaries_created != len(records):
            raise RuntimeError(f"the import did not take every row: {report.rejected} rejected")
    with scratch_runtime(backend) as runtime:
        rows = _raw_rows(runtime, records)
        raw_seconds = _raw_insert(runtime, rows, backend)
    return {
        "people": len(records),
        "members": report.contracts_created,
        "import_s": report.seconds,
        "raw_s": raw_seconds,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.import_members")
    parser.add_argument("--members", type=int, default=20_000, help="members (contracts) to import")
    parser.add_argument("--workers", type=int, default=2, help="import worker processes (2 cores here)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "members.csv"
        records = list(
            synth_members(
                count=args.members, seed=33, product_codes=["ESSENTIEL", "CONFORT", "PREMIUM"], today=utcnow().date()
            )
        )
        write_members_file(path, iter(records))
        size = path.stat().st_size / 1e6
        print(f"{args.workers} import workers; {args.members:,} members, {len(records):,} people; file {size:.1f} MB")
        print(f"{'backend':<11} {'import people/s':>16} {'raw people/s':>13} {'ratio':>7} {'33 M people in':>15}")
        for backend in backends():
            m = measure(backend, path, records, args.workers)
            full, raw = m["people"] / m["import_s"], m["people"] / m["raw_s"]
            minutes = VIAMEDIS_ALMERYS_PEOPLE / full / 60
            print(f"{backend:<11} {full:>16,.0f} {raw:>13,.0f} {full / raw:>7.1%} {minutes:>12.1f} min")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
