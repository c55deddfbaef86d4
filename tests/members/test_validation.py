"""Row and contract validation: what an insurer's data team reads when a file is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from rempart.members.models import BeneficiaryRole
from rempart.members.synth import make_nir, record_row
from rempart.members.validation import RowInvalid, check_contract, nir_matches_person, parse_row
from tests.factories import TODAY, contracts, population

PRODUCTS = frozenset({"ESSENTIEL", "CONFORT", "PREMIUM"})


def _row(**changes: str) -> dict[str, object]:
    row: dict[str, object] = dict(record_row(population(1)[0]))
    row.update(changes)
    return row


def test_a_valid_row_parses_with_the_nir_in_compact_form() -> None:
    record = population(1)[0]
    spaced = " ".join([record.nir[:1], record.nir[1:3], record.nir[3:5], record.nir[5:7], record.nir[7:]])
    parsed = parse_row(_row(nir=spaced), product_codes=PRODUCTS, today=TODAY)
    assert parsed.nir == record.nir


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"nir": "185057800608499"}, "nir", "wrong key"),
        ({"nir": "18505780060"}, "nir", "is not a NIR"),
        ({"nir": ""}, "nir", "missing"),
        ({"sex": "X"}, "sex", "M or F"),
        ({"birth_date": "12/05/1985"}, "birth_date", "YYYY-MM-DD"),
        ({"birth_date": "2031-01-01"}, "birth_date", "future"),
        ({"product_code": "GOLD"}, "product_code", "no product"),
        ({"role": "cousin"}, "role", "one of"),
        ({"contract_start": "2026-01-01", "contract_end": "2025-01-01"}, "contract_end", "before"),
        ({"birth_rank": "12"}, "birth_rank", "1 to 9"),
        ({"marital_status": "complicated"}, "marital_status", "one of"),
        ({"last_name": "A" * 101}, "last_name", "longer than"),
    ],
)
def test_a_bad_field_is_named_with_its_reason_and_never_its_value(
    changes: dict[str, str], field: str, reason: str
) -> None:
    with pytest.raises(RowInvalid) as caught:
        parse_row(_row(**changes), product_codes=PRODUCTS, today=TODAY)
    assert caught.value.field == field
    assert reason in caught.value.reason
    for value in changes.values():
        if len(value) > 3:
            assert value not in caught.value.reason


def test_corsican_nirs_validate_with_their_own_key() -> None:
    import random

    rng = random.Random(3)
    corsican = [
        n for n in (make_nir(rng, sex="F", born=date(1990, 3, 4)) for _ in range(2000)) if n[5:7] in ("2A", "2B")
    ]
    assert corsican, "the generator covers Corsica"
    for nir in corsican:
        assert (
            parse_row(_row(nir=nir, sex="F", birth_date="1990-03-04"), product_codes=PRODUCTS, today=TODAY).nir == nir
        )


def test_nir_must_match_the_persons_sex_year_and_month() -> None:
    born = date(1985, 5, 12)
    nir = "185057800608436"
    assert nir_matches_person(nir, sex="M", birth_date=born) is None
    assert "sex" in (nir_matches_person(nir, sex="F", birth_date=born) or "")
    assert "year" in (nir_matches_person(nir, sex="M", birth_date=date(1986, 5, 12)) or "")
    assert "month" in (nir_matches_person(nir, sex="M", birth_date=date(1985, 6, 12)) or "")


def test_a_child_may_be_covered_under_a_parents_nir_but_an_adult_may_not_borrow_one() -> None:
    family = next(c for c in contracts(population(200)) if any(r.role is BeneficiaryRole.CHILD for r in c))
    holder = family[0]
    child = next(r for r in family if r.role is BeneficiaryRole.CHILD)
    on_parent = replace(child, nir=holder.nir)
    assert check_contract([(1, holder), (2, on_parent)]) == []

    stranger = replace(child, role=BeneficiaryRole.SPOUSE, nir=holder.nir, birth_date=date(1970, 1, 1))
    errors = check_contract([(1, holder), (2, stranger)])
    assert errors
    assert {(e.line, e.field) for e in errors} == {(2, "nir")}


def test_a_contract_needs_exactly_one_holder_and_one_set_of_terms() -> None:
    family = next(c for c in contracts(population(100)) if len(c) >= 2)
    no_holder = [(i, replace(r, role=BeneficiaryRole.SPOUSE)) for i, r in enumerate(family, 1)]
    assert any("no holder" in e.reason for e in check_contract(no_holder))
    two_terms = [
        (1, family[0]),
        (2, replace(family[1], product_code="PREMIUM" if family[0].product_code != "PREMIUM" else "CONFORT")),
    ]
    assert any(e.field == "contract" and e.line == 2 for e in check_contract(two_terms))


def test_the_same_person_twice_on_a_contract_is_refused_but_twins_with_ranks_are_not() -> None:
    family = next(c for c in contracts(population(400)) if any(r.birth_rank == 2 for r in c))
    lines = list(enumerate(family, 1))
    assert check_contract(lines) == []
    twin = next(r for r in family if r.birth_rank == 2)
    duplicated = [*lines, (99, replace(twin))]
    assert any(e.line == 99 and "twice" in e.reason for e in check_contract(duplicated))
