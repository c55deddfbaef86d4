"""The responsible-contract rules: worked examples an actuary would recognise, then properties."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.errors import ValidationFailed
from rempart.insurers.models import CareDomain
from rempart.pricing.engine import Formula, Sante100Class
from rempart.pricing.responsible import (
    ActFacts,
    DentalBasket,
    DeviceKind,
    Ear,
    EpisodeLine,
    HearingClass,
    History,
    Rule,
    Situation,
    quote_episode,
    responsible_rules,
)
from rempart.pricing.responsible_rules import CorrectionLevel, bundled_rule_sets, load_rule_sets, rule_set_on

DAY = date(2025, 3, 14)
ADULT = Situation(age_years=40)
GENEROUS = {domain: Formula(brss_rate_pct=1000, flat_amount_cents=100_000) for domain in CareDomain}

# Class B optics: the BRSS is a few cents in reality; zero keeps the worked figures round.
FRAME_B = ActFacts(
    CareDomain.OPTI, brss_cents=0, amo_rate_pct=60, sante_100_class=Sante100Class.B, device_kind=DeviceKind.FRAME
)
FRAME_A = ActFacts(CareDomain.OPTI, 900, 60, Sante100Class.A, regulated_price_cents=3000, device_kind=DeviceKind.FRAME)


def lens_b(level: CorrectionLevel) -> ActFacts:
    return ActFacts(CareDomain.OPTI, 0, 60, Sante100Class.B, device_kind=DeviceKind.LENS, correction_level=level)


LENS_A = ActFacts(
    CareDomain.OPTI, 1200, 60, Sante100Class.A, regulated_price_cents=4000,
    device_kind=DeviceKind.LENS, correction_level=CorrectionLevel.SIMPLE,
)  # fmt: skip


def at(facts: ActFacts, price_cents: int, *, quantity: int = 1, day: date = DAY, ear: Ear | None = None) -> EpisodeLine:
    return EpisodeLine(facts.care_line("X", day, unit_price_cents=price_cents, quantity=quantity), facts, ear)


def shares(
    lines: list[EpisodeLine], situation: Situation = ADULT, formulas: dict[CareDomain, Formula] = GENEROUS
) -> list[int]:
    return [r.quote.insurer_cents for r in quote_episode(lines, situation, formulas=formulas, consumed={})]


def reasons(
    lines: list[EpisodeLine], situation: Situation = ADULT, formulas: dict[CareDomain, Formula] = GENEROUS
) -> list[str]:
    return [
        r.limited_by.words if r.limited_by else ""
        for r in quote_episode(lines, situation, formulas=formulas, consumed={})
    ]


# -- optics ---------------------------------------------------------------------------------------


def test_class_a_glasses_are_covered_in_full_within_the_regulated_price() -> None:
    lines = [at(FRAME_A, 3000), at(LENS_A, 4000, quantity=2)]

    result = quote_episode(lines, ADULT, formulas={CareDomain.OPTI: Formula(brss_rate_pct=100)}, consumed={})

    assert [r.quote.remainder_cents for r in result] == [0, 0]
    assert [r.quote.insurer_cents for r in result] == [3000 - 540, 8000 - 1440]
    assert result[0].limited_by is not None
    assert result[0].limited_by.rule is Rule.IN_FULL


@pytest.mark.parametrize(
    ("first", "second", "cap_cents", "letter"),
    [
        (CorrectionLevel.SIMPLE, CorrectionLevel.SIMPLE, 42_000, "a"),
        (CorrectionLevel.SIMPLE, CorrectionLevel.COMPLEX, 56_000, "b"),
        (CorrectionLevel.COMPLEX, CorrectionLevel.COMPLEX, 70_000, "c"),
        (CorrectionLevel.SIMPLE, CorrectionLevel.VERY_COMPLEX, 61_000, "d"),
        (CorrectionLevel.VERY_COMPLEX, CorrectionLevel.COMPLEX, 75_000, "e"),
        (CorrectionLevel.VERY_COMPLEX, CorrectionLevel.VERY_COMPLEX, 80_000, "f"),
    ],
)
def test_class_b_glasses_are_capped_by_the_lenses_correction_with_the_frame_at_100_euros(
    first: CorrectionLevel, second: CorrectionLevel, cap_cents: int, letter: str
) -> None:
    # A 250 € frame and two 600 € lenses: far above every cap, under a formula that pays anything.
    lines = [at(FRAME_B, 25_000), at(lens_b(first), 60_000), at(lens_b(second), 60_000)]

    frame, left, right = shares(lines)
    words = reasons(lines)

    assert frame == 10_000
    assert frame + left + right == cap_cents
    assert words[0] == "frame capped at the responsible-contract limit of 100.00 €"
    assert f"grid {letter}" in words[1]
    assert f"limit of {cap_cents // 100:,}.00 € for the equipment" in words[1]


def test_the_equipment_cap_is_split_over_the_lenses_in_proportion_to_their_price() -> None:
    lines = [
        at(FRAME_B, 25_000),
        at(lens_b(CorrectionLevel.SIMPLE), 10_000),
        at(lens_b(CorrectionLevel.SIMPLE), 30_000),
    ]

    assert shares(lines) == [10_000, 8_000, 24_000]  # 320 € left after the frame, 1 : 3


def test_a_cheap_class_b_equipment_is_paid_as_the_formula_says() -> None:
    lines = [at(FRAME_B, 6_000), at(lens_b(CorrectionLevel.SIMPLE), 8_000, quantity=2)]
    formula = {CareDomain.OPTI: Formula(brss_rate_pct=100, flat_amount_cents=5_000)}

    # 50 € per unit: frame 50 €, lenses 100 €; under the caps, above the 50 € floor.
    assert [r.quote.insurer_cents for r in quote_episode(lines, ADULT, formulas=formula, consumed={})] == [
        5_000,
        10_000,
    ]


def test_a_contract_covering_beyond_the_ticket_moderateur_pays_at_least_the_floor() -> None:
    lines = [at(lens_b(CorrectionLevel.COMPLEX), 30_000, quantity=2)]
    formula = {CareDomain.OPTI: Formula(brss_rate_pct=100, flat_amount_cents=1_000)}

    (only,) = quote_episode(lines, ADULT, formulas=formula, consumed={})

    assert only.formula_insurer_cents == 2_000
    assert only.quote.insurer_cents == 20_000  # grid c floor: 200 €
    assert only.limited_by is not None
    assert only.limited_by.rule is Rule.EQUIPMENT_FLOOR


ADULT_GLASSES_2025 = Situation(age_years=40, history=History(optics=(date(2025, 3, 1),)))


@pytest.mark.parametrize(
    ("situation", "care_date", "payable", "until"),
    [
        (ADULT_GLASSES_2025, date(2027, 2, 28), False, "2027-03-01"),
        (ADULT_GLASSES_2025, date(2027, 3, 1), True, None),
        (Situation(age_years=12, history=History(optics=(date(2025, 3, 1),))), date(2026, 2, 28), False, "2026-03-01"),
        (Situation(age_years=12, history=History(optics=(date(2025, 3, 1),))), date(2026, 3, 1), True, None),
        (
            Situation(age_years=40, change_of_sight=True, history=ADULT_GLASSES_2025.history),
            date(2026, 3, 1),
            True,
            None,
        ),
        (
            Situation(age_years=40, change_of_sight=True, history=ADULT_GLASSES_2025.history),
            date(2026, 2, 1),
            False,
            "2026-03-01",
        ),
    ],
    ids=[
        "adult-inside",
        "adult-after",
        "child-inside",
        "child-after",
        "change-of-sight-after",
        "change-of-sight-inside",
    ],
)
def test_one_equipment_per_renewal_period(
    situation: Situation, care_date: date, payable: bool, until: str | None
) -> None:
    lines = [at(FRAME_B, 8_000, day=care_date), at(lens_b(CorrectionLevel.SIMPLE), 10_000, quantity=2, day=care_date)]

    rules = responsible_rules(lines, situation, formulas=GENEROUS)

    assert all(rule.payable is payable for rule in rules)
    if until is not None:
        assert rules[0].cap_reason is not None
        assert rules[0].cap_reason.words.startswith(f"renewal period not over until {until}")
        assert shares(lines, situation) == [0, 0]


def test_more_than_one_equipment_in_an_episode_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="one optical equipment"):
        responsible_rules([at(lens_b(CorrectionLevel.SIMPLE), 1_000, quantity=3)], ADULT, formulas=GENEROUS)


# -- hearing aids ---------------------------------------------------------------------------------

AID_I = ActFacts(
    CareDomain.AUDI, 24_000, 60, Sante100Class.A, regulated_price_cents=95_000,
    device_kind=DeviceKind.HEARING_AID, hearing_class=HearingClass.I,
)  # fmt: skip
AID_II = ActFacts(
    CareDomain.AUDI, 40_000, 60, Sante100Class.B, device_kind=DeviceKind.HEARING_AID, hearing_class=HearingClass.II
)


def test_class_i_hearing_aids_are_covered_in_full_within_the_regulated_price() -> None:
    lines = [at(AID_I, 95_000, ear=Ear.LEFT), at(AID_I, 95_000, ear=Ear.RIGHT)]

    assert shares(lines) == [95_000 - 14_400, 95_000 - 14_400]


def test_class_ii_hearing_aids_are_capped_at_1700_euros_per_ear_amo_share_included() -> None:
    lines = [at(AID_II, 250_000, ear=Ear.LEFT), at(AID_II, 120_000, ear=Ear.RIGHT)]

    left, right = quote_episode(lines, ADULT, formulas=GENEROUS, consumed={})

    assert left.quote.amo_cents == 24_000
    assert left.quote.insurer_cents == 170_000 - 24_000
    assert left.quote.amo_cents + left.quote.insurer_cents == 170_000
    assert left.limited_by is not None
    assert (
        left.limited_by.words
        == "hearing aid capped at the responsible-contract limit of 1,700.00 € per ear, AMO share included"
    )
    assert right.quote.insurer_cents == 120_000 - 24_000  # under the cap: the formula's


def test_a_second_aid_on_the_same_ear_within_four_years_is_refused() -> None:
    situation = Situation(age_years=70, history=History(hearing={Ear.LEFT: (date(2023, 6, 1),)}))
    lines = [at(AID_II, 150_000, ear=Ear.LEFT), at(AID_II, 150_000, ear=Ear.RIGHT)]

    assert shares(lines, situation) == [0, 150_000 - 24_000]
    assert reasons(lines, situation)[0].startswith("renewal period not over until 2027-06-01")


def test_hearing_aids_had_no_responsible_cap_before_2021() -> None:
    lines = [at(AID_II, 250_000, ear=Ear.LEFT, day=date(2020, 6, 1))]

    assert shares(lines) == [250_000 - 24_000]
    assert reasons(lines) == ["no responsible-contract rule for AUDI care before 2021-01-01"]


# -- dental ---------------------------------------------------------------------------------------


def crown(basket: DentalBasket, hlf: int | None) -> ActFacts:
    klass = Sante100Class.A if basket is DentalBasket.SANTE_100 else Sante100Class.B
    return ActFacts(CareDomain.DENT, 12_000, 70, klass, regulated_price_cents=hlf, dental_basket=basket)


def test_dental_baskets() -> None:
    modest = {CareDomain.DENT: Formula(brss_rate_pct=100)}
    generous = {CareDomain.DENT: Formula(brss_rate_pct=500)}

    assert shares([at(crown(DentalBasket.SANTE_100, 50_000), 50_000)], formulas=modest) == [50_000 - 8_400]
    # Moderated basket: within its fee limit, whatever the formula promises; a dearer fee is the patient's.
    assert shares([at(crown(DentalBasket.MODERATED, 55_000), 60_000)], formulas=generous) == [55_000 - 8_400]
    assert shares([at(crown(DentalBasket.MODERATED, 55_000), 54_000)], formulas=generous) == [54_000 - 8_400]
    # Free price: the formula's 500 % of the BRSS.
    assert shares([at(crown(DentalBasket.FREE, None), 90_000)], formulas=generous) == [60_000 - 8_400]


# -- consultations --------------------------------------------------------------------------------

SPECIALIST = ActFacts(CareDomain.CONS, 3_000, 70)


@pytest.mark.parametrize(
    ("in_optam", "expected", "reason"),
    [
        (True, 9_000 - 2_100, ""),  # 300 % of the BRSS: 60 € of overrun covered
        # Outside OPTAM: the overrun is covered at most min(100 % BRSS, 60 € - 20 % BRSS) = 30 €.
        (False, 900 + 3_000, "fee overrun of a doctor outside OPTAM covered at most 30.00 €"),
    ],
)
def test_fee_overruns_outside_optam_are_covered_less(in_optam: bool, expected: int, reason: str) -> None:
    situation = Situation(age_years=40, doctor_in_optam=in_optam)
    formula = {CareDomain.CONS: Formula(brss_rate_pct=300)}
    lines = [at(SPECIALIST, 10_000)]

    assert shares(lines, situation, formula) == [expected]
    assert reasons(lines, situation, formula)[0].startswith(reason)


def test_a_modest_formula_pays_a_non_optam_doctor_at_least_the_ticket_moderateur() -> None:
    situation = Situation(age_years=40, doctor_in_optam=False)
    formula = {CareDomain.CONS: Formula(brss_rate_pct=120)}

    # OPTAM cover 6 € less 20 % of 30 € leaves nothing: the ticket modérateur alone.
    assert shares([at(SPECIALIST, 5_000)], situation, formula) == [900]


# -- a non-responsible product, the versions --------------------------------------------------------


def test_a_non_responsible_product_has_no_caps_and_says_so() -> None:
    lines = [at(FRAME_B, 25_000), at(lens_b(CorrectionLevel.SIMPLE), 60_000, quantity=2)]
    situation = Situation(age_years=40, responsible=False, history=History(optics=(date(2025, 1, 1),)))

    assert shares(lines, situation) == [25_000 - 0, 120_000 - 0]
    assert reasons(lines, situation) == ["not a responsible contract: no responsible-contract floor or cap applies"] * 2


def test_the_rule_set_in_force_depends_on_the_day() -> None:
    assert rule_set_on(date(2019, 12, 31)) is None
    rule_set = rule_set_on(date(2020, 1, 1))
    assert rule_set is not None
    assert rule_set.version == "2020"
    lines = [at(FRAME_B, 25_000, day=date(2019, 12, 31))]
    assert reasons(lines) == ["no responsible-contract rule set on file for 2019-12-31"]


def test_a_later_version_takes_over_on_its_date(tmp_path: Path) -> None:
    bundled = Path(__file__).parents[2] / "src/rempart/pricing/rules/contrat-responsable-2020.toml"
    (tmp_path / "contrat-responsable-2020.toml").write_text(bundled.read_text(encoding="utf-8"), encoding="utf-8")
    later = bundled.read_text(encoding="utf-8").replace("effective_from = 2020-01-01", "effective_from = 2026-01-01", 1)
    later = later.replace('version = "2020"', 'version = "2026"').replace(
        "frame_cap_cents = 10_000", "frame_cap_cents = 12_000"
    )
    (tmp_path / "contrat-responsable-2026.toml").write_text(later, encoding="utf-8")
    sets = load_rule_sets(tmp_path)
    lines = [at(FRAME_B, 25_000, day=date(2026, 1, 1))]

    assert [s.version for s in sets] == ["2020", "2026"]
    assert [
        r.quote.insurer_cents for r in quote_episode(lines, ADULT, formulas=GENEROUS, consumed={}, rule_sets=sets)
    ] == [12_000]
    before = Situation(age_years=40, rules_on=date(2025, 12, 31))  # the contract was last renewed in 2025
    assert [
        r.quote.insurer_cents for r in quote_episode(lines, before, formulas=GENEROUS, consumed={}, rule_sets=sets)
    ] == [10_000]


def test_the_bundled_rules_are_read_once() -> None:
    assert bundled_rule_sets() is bundled_rule_sets()


# -- properties -----------------------------------------------------------------------------------

levels = st.sampled_from(list(CorrectionLevel))
prices = st.integers(min_value=0, max_value=300_000)
formulas = st.builds(
    Formula,
    brss_rate_pct=st.integers(min_value=0, max_value=1000),
    flat_amount_cents=st.integers(min_value=0, max_value=100_000),
    yearly_ceiling_cents=st.none() | st.integers(min_value=0, max_value=200_000),
    sante_100_class_a=st.booleans(),
)


@st.composite
def episodes(draw: st.DrawFn) -> tuple[list[EpisodeLine], Situation, dict[CareDomain, Formula]]:
    day = draw(st.dates(min_value=date(2019, 6, 1), max_value=date(2030, 12, 31)))
    lines = []
    if draw(st.booleans()):
        lines.append(at(draw(st.sampled_from([FRAME_A, FRAME_B])), draw(prices), day=day))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        lines.append(at(draw(st.sampled_from([LENS_A, lens_b(draw(levels))])), draw(prices), day=day))
    for ear in draw(st.sets(st.sampled_from(list(Ear)))):
        lines.append(at(draw(st.sampled_from([AID_I, AID_II])), draw(prices), day=day, ear=ear))
    basket = draw(st.sampled_from(list(DentalBasket)))
    lines.append(at(crown(basket, None if basket is DentalBasket.FREE else 50_000), draw(prices), day=day))
    lines.append(at(SPECIALIST, draw(prices), day=day))
    past = st.lists(st.dates(min_value=date(2015, 1, 1), max_value=day), max_size=2).map(tuple)
    situation = Situation(
        age_years=draw(st.integers(min_value=0, max_value=110)),
        responsible=draw(st.booleans()),
        change_of_sight=draw(st.booleans()),
        doctor_in_optam=draw(st.booleans()),
        history=History(
            optics=draw(past), hearing={ear: draw(past) for ear in draw(st.sets(st.sampled_from(list(Ear))))}
        ),
    )
    covered = draw(
        st.dictionaries(st.sampled_from([CareDomain.OPTI, CareDomain.AUDI, CareDomain.DENT, CareDomain.CONS]), formulas)
    )
    return lines, situation, covered


@settings(max_examples=300, deadline=None)
@given(episodes())
def test_shares_add_up_stay_within_the_caps_and_never_go_negative(
    episode: tuple[list[EpisodeLine], Situation, dict[CareDomain, Formula]],
) -> None:
    lines, situation, covered = episode

    results = quote_episode(lines, situation, formulas=covered, consumed={})

    for episode_line, result in zip(lines, results, strict=True):
        q, rule = result.quote, result.rule
        assert q.amo_cents + q.insurer_cents + q.remainder_cents == q.price_cents == episode_line.line.price_cents
        assert min(q.amo_cents, q.insurer_cents, q.remainder_cents, q.ceiling_consumed_cents) >= 0
        if rule.cap_cents is not None:
            assert q.insurer_cents <= rule.cap_cents
        if not rule.payable:
            assert q.insurer_cents == 0
    if situation.responsible:
        optics_b = [
            r.quote.insurer_cents
            for line, r in zip(lines, results, strict=True)
            if line.facts is not FRAME_A and line.facts is not LENS_A and line.facts.care_domain is CareDomain.OPTI
        ]
        assert sum(optics_b) <= 80_000
        frames = [r.quote.insurer_cents for line, r in zip(lines, results, strict=True) if line.facts is FRAME_B]
        assert all(share <= 10_000 for share in frames)


@settings(max_examples=100, deadline=None)
@given(episodes())
def test_same_inputs_same_answer(episode: tuple[list[EpisodeLine], Situation, dict[CareDomain, Formula]]) -> None:
    lines, situation, covered = episode

    assert quote_episode(lines, situation, formulas=covered, consumed={}) == quote_episode(
        list(lines), situation, formulas=dict(covered), consumed={}
    )
