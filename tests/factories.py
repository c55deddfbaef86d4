"""Factories: insurers with products and a synthetic population, created through the services."""

from __future__ import annotations

from datetime import date
from itertools import groupby
from pathlib import Path

from rempart.demo import PRODUCTS, product_guarantees
from rempart.insurers.models import Insurer
from rempart.insurers.service import create_insurer, create_product
from rempart.members.service import WriteResult, write_members
from rempart.members.synth import synth_members, write_members_file
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime

TODAY = date(2026, 11, 22)


def make_insurer(runtime: Runtime, amc_number: str = "88450101", name: str = "Mutuelle des Remparts") -> Insurer:
    with runtime.sessions.begin() as session:
        insurer = create_insurer(session=session, keys=runtime.keys, amc_number=amc_number, name=name)
        for code, (label, rate, flat, ceiling) in PRODUCTS.items():
            create_product(
                session=session,
                insurer_id=insurer.id,
                code=code,
                name=label,
                guarantees=product_guarantees(rate, flat, ceiling),
            )
    return insurer


def population(members: int, *, seed: int = 7, first_number: int = 1) -> list[MemberRecord]:
    return list(
        synth_members(count=members, seed=seed, product_codes=list(PRODUCTS), today=TODAY, first_number=first_number)
    )


def load_members(runtime: Runtime, insurer: Insurer, records: list[MemberRecord]) -> WriteResult:
    with runtime.sessions.begin() as session:
        return write_members(session=session, keys=runtime.keys, insurer_id=insurer.id, records=records, today=TODAY)


def members_file(tmp_path: Path, records: list[MemberRecord], name: str = "members.csv") -> Path:
    path = tmp_path / name
    write_members_file(path, iter(records))
    return path


def contracts(records: list[MemberRecord]) -> list[list[MemberRecord]]:
    return [list(group) for _, group in groupby(records, key=lambda r: r.member_number)]
