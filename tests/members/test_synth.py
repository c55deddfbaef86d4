"""The synthetic population: valid, varied, deterministic, streaming."""

from __future__ import annotations

import inspect
from collections import Counter
from datetime import date
from itertools import islice

from stdnum.fr import nir as nir_number

from rempart.members.models import BeneficiaryRole
from rempart.members.synth import synth_members
from rempart.members.validation import check_contract
from tests.factories import TODAY, contracts, population


def test_the_same_seed_gives_the_same_people_and_another_seed_others() -> None:
    assert population(50, seed=11) == population(50, seed=11)
    assert population(50, seed=11) != population(50, seed=12)


def test_every_generated_contract_passes_the_importers_rules() -> None:
    records = population(1500)
    assert all(nir_number.is_valid(r.nir) for r in records)
    for family in contracts(records):
        assert check_contract(list(enumerate(family, 1))) == []


def test_the_population_has_the_shapes_a_professional_meets() -> None:
    records = population(3000)
    roles = Counter(r.role for r in records)
    assert roles[BeneficiaryRole.HOLDER] == 3000
    assert roles[BeneficiaryRole.SPOUSE] > 1000
    assert roles[BeneficiaryRole.CHILD] > 1000
    holders = {r.member_number: r.nir for r in records if r.role is BeneficiaryRole.HOLDER}
    on_parent = [r for r in records if r.role is BeneficiaryRole.CHILD and r.nir == holders[r.member_number]]
    assert len(on_parent) > 200
    twins = [r for r in records if r.birth_rank == 2]
    assert twins
    departments = Counter(r.nir[5:7] for r in records)
    assert departments["2A"] + departments["2B"] > 0
    assert any(r.nir[5:8] in ("971", "972", "973", "974", "976") for r in records)
    assert len({r.nir for r in records if r.role is BeneficiaryRole.HOLDER}) == 3000


def test_it_streams_a_million_members_without_building_them() -> None:
    stream = synth_members(count=1_000_000, seed=1, product_codes=["A"], today=TODAY)
    assert inspect.isgenerator(stream)
    assert len(list(islice(stream, 100))) == 100


def test_no_two_people_are_one_to_the_register() -> None:
    """Children under a parent's NIR are told apart by birth date and rank: in a large population, no
    two people share NIR, date of birth and rank (an import would take the second for the first)."""
    # Seed 8 once made two children under one NIR, born the same day, both rank 1.
    records = list(synth_members(count=10_000, seed=8, product_codes=["ESSENTIEL"], today=date(2026, 12, 7)))
    seen = Counter((r.nir, r.birth_date, r.birth_rank) for r in records)
    assert [who for who, times in seen.items() if times > 1] == []
