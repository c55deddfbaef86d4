"""A synthetic French population: families with valid NIRs, for the demo, the tests and benchmarks.

NIRs are consistent with sex, year and month of birth and a department of birth (Corsica's 2A/2B
and overseas departments included); about half of the children are covered under a parent's NIR,
and some are twins told apart by birth rank. Deterministic for a seed, and a generator: a million
members stream through in constant memory.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import IO

from faker import Faker
from stdnum.fr import nir as nir_number

from rempart.members.models import BeneficiaryRole, ContractKind, MaritalStatus
from rempart.members.validation import COLUMNS, MemberRecord

_METRO = [f"{d:02d}" for d in range(1, 96) if d != 20] + ["2A", "2B"]
_OVERSEAS = ["971", "972", "973", "974", "976"]


def make_nir(rng: random.Random, *, sex: str, born: date) -> str:
    """A NIR with a valid key for someone of this sex born on this date."""
    head = f"{1 if sex == 'M' else 2}{born.year % 100:02d}{born.month:02d}"
    if rng.random() < 0.04:
        place = rng.choice(_OVERSEAS) + f"{rng.randint(1, 99):02d}"
    else:
        place = rng.choice(_METRO) + f"{rng.randint(1, 999):03d}"
    body = head + place + f"{rng.randint(1, 999):03d}"
    return body + nir_number.calc_check_digits(body + "00")


def _birth(rng: random.Random, *, oldest: int, youngest: int, today: date) -> date:
    return today - timedelta(days=rng.randint(youngest * 365, oldest * 365))


def synth_members(
    *, count: int, seed: int, product_codes: Sequence[str], today: date, first_number: int = 1
) -> Iterator[MemberRecord]:
    """``count`` contracts (members), each with its holder and family."""
    rng = random.Random(seed)
    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    for n in range(first_number, first_number + count):
        product = rng.choice(product_codes)
        kind = ContractKind.COLLECTIVE if rng.random() < 0.45 else ContractKind.INDIVIDUAL
        start = date(today.year - rng.randint(0, 8), rng.randint(1, 12), 1)
        # A few contracts ended this year: their cards no longer open rights.
        ended = date(today.year, rng.randint(1, 6), 28) if rng.random() < 0.03 else None
        end = ended if ended and ended > start else None
        family_name = fake.last_name()
        contract = MemberRecord(
            member_number=f"{n:010d}",
            product_code=product,
            contract_kind=kind,
            contract_start=start,
            contract_end=end,
            role=BeneficiaryRole.HOLDER,
            nir="",
            sex="",
            birth_date=start,
            birth_rank=1,
            last_name=family_name,
            first_name="",
            marital_status=MaritalStatus.SINGLE,
        )

        def person(
            role: BeneficiaryRole,
            sex: str,
            born: date,
            status: MaritalStatus,
            *,
            nir: str | None = None,
            rank: int = 1,
            last_name: str = family_name,
            contract: MemberRecord = contract,
        ) -> MemberRecord:
            return replace(
                contract,
                role=role,
                nir=nir or make_nir(rng, sex=sex, born=born),
                sex=sex,
                birth_date=born,
                birth_rank=rank,
                last_name=last_name,
                first_name=fake.first_name_male() if sex == "M" else fake.first_name_female(),
                marital_status=status,
            )

        holder_sex = rng.choice("MF")
        couple = rng.random() < 0.55
        status = (
            rng.choice([MaritalStatus.MARRIED, MaritalStatus.CIVIL_UNION])
            if couple
            else rng.choice([MaritalStatus.SINGLE, MaritalStatus.DIVORCED, MaritalStatus.WIDOWED])
        )
        holder = person(BeneficiaryRole.HOLDER, holder_sex, _birth(rng, oldest=85, youngest=20, today=today), status)
        yield holder
        if couple:
            spouse_sex = "F" if holder_sex == "M" else "M"
            if rng.random() < 0.05:
                spouse_sex = holder_sex
            yield person(
                BeneficiaryRole.SPOUSE,
                spouse_sex,
                _birth(rng, oldest=85, youngest=20, today=today),
                status,
                last_name=family_name if rng.random() < 0.7 else fake.last_name(),
            )
        children = (
            rng.choices([0, 1, 2, 3, 4], weights=[40, 20, 25, 10, 5])[0]
            if holder.birth_date.year > today.year - 60
            else 0
        )
        # Children under the holder's NIR are told apart by birth date and rank: two who are not
        # twins cannot share a birth date there (the second would be the first, to the register).
        born_under_parent: set[date] = set()
        for _ in range(children):
            born = _birth(rng, oldest=20, youngest=0, today=today)
            twins = rng.random() < 0.03
            under_parent = rng.random() < 0.5
            while under_parent and born in born_under_parent:
                born = _birth(rng, oldest=20, youngest=0, today=today)
            if under_parent:
                born_under_parent.add(born)
            for rank in (1, 2) if twins else (1,):
                sex = rng.choice("MF")
                yield person(
                    BeneficiaryRole.CHILD,
                    sex,
                    born,
                    MaritalStatus.SINGLE,
                    nir=holder.nir if under_parent else None,
                    rank=rank,
                )


def record_row(record: MemberRecord) -> dict[str, str]:
    return {
        "member_number": record.member_number,
        "product_code": record.product_code,
        "contract_kind": record.contract_kind.value,
        "contract_start": record.contract_start.isoformat(),
        "contract_end": record.contract_end.isoformat() if record.contract_end else "",
        "role": record.role.value,
        "nir": record.nir,
        "sex": record.sex,
        "birth_date": record.birth_date.isoformat(),
        "birth_rank": str(record.birth_rank),
        "last_name": record.last_name,
        "first_name": record.first_name,
        "marital_status": record.marital_status.value,
    }


def write_file(records: Iterator[MemberRecord], out: IO[str], *, fmt: str) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow(record_row(record))
            count += 1
    else:
        for record in records:
            out.write(json.dumps(record_row(record), ensure_ascii=False) + "\n")
            count += 1
    return count


def write_members_file(path: Path, records: Iterator[MemberRecord]) -> int:
    fmt = "ndjson" if path.suffix.lower() in (".ndjson", ".jsonl") else "csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        return write_file(records, out, fmt=fmt)
