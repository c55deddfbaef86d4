"""The quote engine: worked examples a professional would recognise, then properties over any input."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.errors import ValidationFailed
from rempart.insurers.models import SANTE_100_DOMAINS, CareDomain
from rempart.pricing.engine import (
    CareLine,
    CeilingKey,
    Formula,
    Limit,
    Sante100Class,
    percent_of,
    quote,
)

DAY = date(2025, 3, 14)


def line(domain: CareDomain = CareDomain.CONS, **overrides: object) -> CareLine:
    fields: dict[str, object] = {
        "care_domain": domain,
        "act_code": "G",
        "care_date": DAY,
        "quantity": 1,
        "unit_price_cents": 3000,
        "brss_cents": 3000,
        "amo_rate_pct": 70,
    }
    fields.update(overrides)
    return CareLine(**fields)  # type: ignore[arg-type]


def test_a_gp_consultation_at_100_percent_brss_leaves_nothing_to_pay() -> None:
    result = quote([line()], {CareDomain.CONS: Formula(brss_rate_pct=100)}, consumed={})

    (only,) = result.lines
    assert (only.price_cents, only.amo_cents, only.insurer_cents, only.remainder_cents) == (3000, 2100, 900, 0)


def test_fees_above_the_brss_leave_a_remainder_under_a_100_percent_formula() -> None:
    specialist = line(unit_price_cents=5000, brss_cents=3000)

    (only,) = quote([specialist], {CareDomain.CONS: Formula(brss_rate_pct=100)}, consumed={}).lines

    assert (only.amo_cents, only.insurer_cents, only.remainder_cents) == (2100, 900, 2000)


def test_a_generous_formula_never_pays_more_than_the_price() -> None:
    specialist = line(unit_price_cents=5000, brss_cents=3000)

    (only,) = quote([specialist], {CareDomain.CONS: Formula(brss_rate_pct=300)}, consumed={}).lines

    assert (only.amo_cents, only.insurer_cents, only.remainder_cents) == (2100, 2900, 0)
    assert only.limited_by is Limit.PRICE


def test_percentages_round_half_up_to_the_cent() -> None:
    assert percent_of(1001, 70) == 701  # 700.7
    assert percent_of(1005, 50) == 503  # 502.5 rounds up
    assert percent_of(1, 49) == 0


def test_class_a_glasses_leave_no_remainder_within_the_regulated_price_even_past_the_ceiling() -> None:
    glasses = line(
        CareDomain.OPTI,
        act_code="2223345",
        unit_price_cents=3000,
        brss_cents=900,
        amo_rate_pct=60,
        sante_100_class=Sante100Class.A,
        regulated_price_cents=3000,
    )
    formula = Formula(brss_rate_pct=100, yearly_ceiling_cents=10000, sante_100_class_a=True)

    result = quote([glasses], {CareDomain.OPTI: formula}, consumed={CeilingKey(CareDomain.OPTI, 2025): 10000})

    (only,) = result.lines
    assert (only.amo_cents, only.insurer_cents, only.remainder_cents) == (540, 2460, 0)
    assert only.ceiling_consumed_cents == 0


def test_class_a_priced_over_the_regulated_price_is_flagged_and_the_excess_is_not_covered() -> None:
    glasses = line(
        CareDomain.OPTI,
        unit_price_cents=3500,
        brss_cents=900,
        amo_rate_pct=60,
        sante_100_class=Sante100Class.A,
        regulated_price_cents=3000,
    )

    (only,) = quote([glasses], {CareDomain.OPTI: Formula(100, sante_100_class_a=True)}, consumed={}).lines

    assert only.over_regulated_price
    assert (only.insurer_cents, only.remainder_cents) == (2460, 500)


def test_class_b_frames_are_capped_by_the_class_b_ceiling() -> None:
    frames = line(
        CareDomain.OPTI, unit_price_cents=25000, brss_cents=5, amo_rate_pct=60, sante_100_class=Sante100Class.B
    )
    formula = Formula(brss_rate_pct=100, flat_amount_cents=20000, class_b_ceiling_cents=10000)

    (only,) = quote([frames], {CareDomain.OPTI: formula}, consumed={}).lines

    assert (only.amo_cents, only.insurer_cents, only.remainder_cents) == (3, 10000, 14997)
    assert only.limited_by is Limit.CLASS_B_CEILING


def test_lines_consume_the_yearly_ceiling_in_order_and_each_year_has_its_own() -> None:
    crown = {"unit_price_cents": 50000, "brss_cents": 12000, "amo_rate_pct": 60}
    lines = [
        line(CareDomain.DENT, care_date=date(2025, 12, 20), **crown),
        line(CareDomain.DENT, care_date=date(2025, 12, 22), **crown),
        line(CareDomain.DENT, care_date=date(2026, 1, 5), **crown),
    ]
    formula = Formula(brss_rate_pct=400, yearly_ceiling_cents=60000)

    result = quote(lines, {CareDomain.DENT: formula}, consumed={CeilingKey(CareDomain.DENT, 2025): 20000})

    # 400 % of 120 € = 480 €, minus AMO 72 € = 408 € promised per crown.
    assert [q.insurer_cents for q in result.lines] == [40000, 0, 40800]
    assert [q.limited_by for q in result.lines] == [Limit.YEARLY_CEILING, Limit.YEARLY_CEILING, None]
    assert result.remaining_after == {CeilingKey(CareDomain.DENT, 2025): 0, CeilingKey(CareDomain.DENT, 2026): 19200}
    assert result.consumed() == {CeilingKey(CareDomain.DENT, 2025): 40000, CeilingKey(CareDomain.DENT, 2026): 40800}


def test_a_domain_without_formula_is_not_covered() -> None:
    (only,) = quote([line(CareDomain.TRAN)], {CareDomain.CONS: Formula(100)}, consumed={}).lines

    assert (only.insurer_cents, only.remainder_cents, only.limited_by) == (0, 900, Limit.NOT_COVERED)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quantity": 0}, "quantity"),
        ({"unit_price_cents": -1}, "unit price"),
        ({"amo_rate_pct": 101}, "AMO rate"),
        ({"sante_100_class": Sante100Class.A}, "class"),
        ({"care_domain": CareDomain.OPTI, "sante_100_class": Sante100Class.A}, "regulated price"),
        # A yearly ceiling is kept per calendar year of care, for the years 2000 to 2200.
        ({"care_date": date(2201, 1, 1)}, "date of care"),
        ({"care_date": date(1999, 12, 31)}, "date of care"),
    ],
)
def test_invalid_lines_are_refused_with_a_reason(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        quote([line(**overrides)], {}, consumed={})  # type: ignore[arg-type]


# -- properties --------------------------------------------------------------------------------

DOMAINS = list(CareDomain)


@st.composite
def care_lines(draw: st.DrawFn) -> CareLine:
    domain = draw(st.sampled_from(DOMAINS))
    klass = draw(st.sampled_from([None, Sante100Class.A, Sante100Class.B])) if domain in SANTE_100_DOMAINS else None
    regulated = draw(st.integers(0, 200_000)) if klass is Sante100Class.A else draw(st.none() | st.integers(0, 200_000))
    return CareLine(
        care_domain=domain,
        act_code="X",
        care_date=draw(st.dates(date(2024, 1, 1), date(2026, 12, 31))),
        quantity=draw(st.integers(1, 20)),
        unit_price_cents=draw(st.integers(0, 300_000)),
        brss_cents=draw(st.integers(0, 300_000)),
        amo_rate_pct=draw(st.integers(0, 100)),
        sante_100_class=klass,
        regulated_price_cents=regulated,
    )


formulas = st.builds(
    Formula,
    brss_rate_pct=st.integers(0, 1000),
    flat_amount_cents=st.integers(0, 100_000),
    yearly_ceiling_cents=st.none() | st.integers(0, 500_000),
    sante_100_class_a=st.booleans(),
    class_b_ceiling_cents=st.none() | st.integers(0, 100_000),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[CareLine], dict[CareDomain, Formula], dict[CeilingKey, int]]:
    lines = draw(st.lists(care_lines(), min_size=1, max_size=12))
    table = draw(st.dictionaries(st.sampled_from(DOMAINS), formulas))
    consumed = {
        CeilingKey(ln.care_domain, ln.care_date.year): draw(st.integers(0, 600_000))
        for ln in lines
        if draw(st.booleans())
    }
    return lines, table, consumed


@given(cases())
def test_shares_are_never_negative_and_always_add_up_to_the_price(
    case: tuple[list[CareLine], dict[CareDomain, Formula], dict[CeilingKey, int]],
) -> None:
    lines, table, consumed = case
    result = quote(lines, table, consumed=consumed)
    for ln, q in zip(lines, result.lines, strict=True):
        assert min(q.amo_cents, q.insurer_cents, q.remainder_cents, q.ceiling_consumed_cents) >= 0
        assert q.amo_cents + q.insurer_cents + q.remainder_cents == q.price_cents == ln.quantity * ln.unit_price_cents
    assert result.amo_cents + result.insurer_cents + result.remainder_cents == result.price_cents


@given(cases())
def test_yearly_and_class_b_ceilings_are_never_exceeded(
    case: tuple[list[CareLine], dict[CareDomain, Formula], dict[CeilingKey, int]],
) -> None:
    lines, table, consumed = case
    result = quote(lines, table, consumed=consumed)
    for key, used in result.consumed().items():
        ceiling = table[key.care_domain].yearly_ceiling_cents
        assert ceiling is not None
        assert used <= max(0, ceiling - consumed.get(key, 0))
        assert result.remaining_after[key] == max(0, ceiling - consumed.get(key, 0)) - used
    for ln, q in zip(lines, result.lines, strict=True):
        formula = table.get(ln.care_domain)
        if ln.sante_100_class is Sante100Class.B and formula and formula.class_b_ceiling_cents is not None:
            assert q.insurer_cents <= formula.class_b_ceiling_cents
        if (
            formula
            and formula.yearly_ceiling_cents is not None
            and not (ln.sante_100_class is Sante100Class.A and formula.sante_100_class_a)
        ):
            assert q.ceiling_consumed_cents == q.insurer_cents


@given(cases())
def test_class_a_under_a_responsible_contract_leaves_no_remainder_within_the_regulated_price(
    case: tuple[list[CareLine], dict[CareDomain, Formula], dict[CeilingKey, int]],
) -> None:
    lines, table, consumed = case
    result = quote(lines, table, consumed=consumed)
    for ln, q in zip(lines, result.lines, strict=True):
        formula = table.get(ln.care_domain)
        if ln.sante_100_class is Sante100Class.A and formula and formula.sante_100_class_a:
            assert ln.regulated_price_cents is not None
            excess = max(0, q.price_cents - ln.quantity * ln.regulated_price_cents)
            # The patient pays at most what the professional charged over the regulated price.
            assert q.remainder_cents <= excess
            assert q.ceiling_consumed_cents == 0
