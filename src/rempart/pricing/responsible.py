"""The "contrat responsable" rules (article R.871-2 CSS, 100 % Santé): pure, driven by data files.

The figures live in ``rules/contrat-responsable-<version>.toml``, one file per version of the
regulation; the version in force on a day is the latest whose ``effective_from`` is on or before it
(each care domain may start later, as hearing aids did in 2021). Nothing here reads the database.

For the lines of one episode of care, ``responsible_rules`` answers per line the floor and the cap
the regulation puts on the insurer's share, or that the line is not payable (renewal period not
over), each with a reason in plain words. ``quote_episode`` runs the engine's ``quote_line`` and
bounds each share by those rules.

How an equipment-level amount (an optics cap or floor for two lenses and a frame) is split over the
class B lines, deterministically: the frame first, up to the frame limit and what AMO left of its
price; the rest over the lens lines in proportion to what AMO left of each, the odd cents to the
earlier lines in the episode's order. A lens line the formula pays less than its share does not
pass the unused part to the other lens: the split never lets the equipment exceed its cap.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

from rempart.errors import ValidationFailed
from rempart.insurers.models import CareDomain
from rempart.pricing.engine import CareLine, CeilingKey, Formula, LineQuote, Sante100Class, percent_of, quote_line
from rempart.pricing.responsible_rules import CorrectionLevel, RuleSet, lens_pair, rule_set_on


class DeviceKind(StrEnum):
    FRAME = "frame"
    LENS = "lens"
    HEARING_AID = "hearing_aid"


class HearingClass(StrEnum):
    I = "I"  # noqa: E741 - the regulation's own name for the 100 % Santé class
    II = "II"


class DentalBasket(StrEnum):
    SANTE_100 = "sante_100"  # no remainder within the fee limits (HLF)
    MODERATED = "moderated"  # "tarifs maîtrisés": fee limits, coverage per the formula within them
    FREE = "free"  # "tarifs libres"


class Ear(StrEnum):
    LEFT = "left"
    RIGHT = "right"


class Rule(StrEnum):
    """Which responsible-contract rule set a line's floor, cap or refusal."""

    NOT_RESPONSIBLE = "not_responsible"
    NO_RULE_SET = "no_rule_set"
    DOMAIN_NOT_IN_FORCE = "domain_not_in_force"
    RENEWAL_PERIOD = "renewal_period"
    IN_FULL = "in_full"  # 100 % Santé class A / class I / dental basket, within the regulated price
    FRAME_CAP = "frame_cap"
    EQUIPMENT_CAP = "equipment_cap"
    EQUIPMENT_FLOOR = "equipment_floor"
    HEARING_CAP = "hearing_cap"
    DENTAL_FEE_LIMIT = "dental_fee_limit"
    NON_OPTAM_OVERRUN = "non_optam_overrun"
    TICKET_MODERATEUR = "ticket_moderateur"


@dataclass(frozen=True)
class Reason:
    rule: Rule
    words: str


# -- the facts and the situation ---------------------------------------------------------------


@dataclass(frozen=True)
class ActFacts:
    """What the act reference table tells of a code, as far as these rules need it."""

    care_domain: CareDomain
    brss_cents: int
    amo_rate_pct: int
    sante_100_class: Sante100Class | None = None
    regulated_price_cents: int | None = None  # PLV for devices, HLF for dental care
    device_kind: DeviceKind | None = None
    correction_level: CorrectionLevel | None = None  # lenses
    hearing_class: HearingClass | None = None  # hearing aids
    dental_basket: DentalBasket | None = None

    def care_line(self, act_code: str, care_date: date, *, unit_price_cents: int, quantity: int = 1) -> CareLine:
        """The engine's line for this act, its money facts taken from here so that both agree."""
        return CareLine(
            care_domain=self.care_domain,
            act_code=act_code,
            care_date=care_date,
            quantity=quantity,
            unit_price_cents=unit_price_cents,
            brss_cents=self.brss_cents,
            amo_rate_pct=self.amo_rate_pct,
            sante_100_class=self.sante_100_class,
            regulated_price_cents=self.regulated_price_cents,
        )


@dataclass(frozen=True)
class EpisodeLine:
    line: CareLine
    facts: ActFacts
    ear: Ear | None = None  # hearing aids: which ear the aid is for

    def validate(self) -> None:
        self.line.validate()
        line, facts = self.line, self.facts
        problems = []
        if (line.care_domain, line.brss_cents, line.amo_rate_pct) != (
            facts.care_domain,
            facts.brss_cents,
            facts.amo_rate_pct,
        ) or (line.sante_100_class, line.regulated_price_cents) != (facts.sante_100_class, facts.regulated_price_cents):
            problems.append(f"line {line.act_code} does not match its act's reference facts")
        if facts.device_kind is DeviceKind.LENS and facts.correction_level is None:
            problems.append(f"lens {line.act_code} needs its correction level")
        if facts.device_kind is DeviceKind.HEARING_AID:
            if facts.hearing_class is None:
                problems.append(f"hearing aid {line.act_code} needs its class (I or II)")
            if self.ear is None:
                problems.append(f"hearing aid {line.act_code} needs the ear it is for")
            if line.quantity != 1:
                problems.append(f"hearing aid {line.act_code}: one aid per line (one line per ear)")
        if problems:
            raise ValidationFailed("; ".join(problems))


@dataclass(frozen=True)
class History:
    """Dates of the beneficiary's previous equipment: glasses, and hearing aids per ear."""

    optics: tuple[date, ...] = ()
    hearing: Mapping[Ear, tuple[date, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Situation:
    age_years: int  # on the day of care
    responsible: bool = True  # the product is a "contrat responsable"
    change_of_sight: bool = False  # a prescription says the sight changed
    doctor_in_optam: bool = True  # consultations: the doctor adheres to OPTAM / OPTAM-CO
    history: History = field(default_factory=History)
    # The day that picks the rule set: the décret applies to contracts signed or renewed from its
    # date, so callers that know the contract's last renewal pass it; the date of care otherwise.
    rules_on: date | None = None


# -- per-line answers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRule:
    """What the regulation allows of the insurer's share of one line."""

    payable: bool = True
    floor_cents: int = 0
    floor_reason: Reason | None = None
    cap_cents: int | None = None
    cap_reason: Reason | None = None
    # Why no rule bounds the line, when that is worth saying (not a responsible contract, no rule set).
    context: Reason | None = None

    def bound(self, insurer_cents: int, *, after_amo_cents: int) -> tuple[int, Reason | None]:
        """The share within this rule, and the reason that set it (``None``: the formula did)."""
        if not self.payable:
            return 0, self.cap_reason
        share, reason = min(insurer_cents, after_amo_cents), None
        if self.cap_cents is not None and share > self.cap_cents:
            share, reason = self.cap_cents, self.cap_reason
        if share < self.floor_cents:
            share, reason = self.floor_cents, self.floor_reason
        return min(share, after_amo_cents), reason or self.context


def euros(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d} €"


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class _Amounts:
    quantity: int
    price: int
    brss: int
    amo: int
    after_amo: int
    ticket_moderateur: int
    regulated: int | None

    @classmethod
    def of(cls, line: CareLine) -> _Amounts:
        price, brss = line.price_cents, line.quantity * line.brss_cents
        amo = min(percent_of(brss, line.amo_rate_pct), price)
        regulated = None if line.regulated_price_cents is None else line.quantity * line.regulated_price_cents
        return cls(line.quantity, price, brss, amo, price - amo, max(0, min(brss, price) - amo), regulated)

    @property
    def in_full(self) -> int:
        """Class A style: the regulated price less AMO, never more than the price less AMO."""
        assert self.regulated is not None
        return max(0, min(self.price, self.regulated) - self.amo)


def _split(total: int, first: int | None, weights: Sequence[int]) -> tuple[int, list[int]]:
    """``total`` over a frame (``first``: what it may take at most, ``None`` if absent) then over
    lines in proportion to ``weights`` (each at most its weight), odd cents to the earlier lines."""
    head = 0 if first is None else min(first, total)
    rest = total - head
    weight_sum = sum(weights)
    if weight_sum <= rest:
        return head, list(weights)
    shares = [rest * weight // weight_sum for weight in weights]
    odd = rest - sum(shares)
    for index, weight in enumerate(weights):
        extra = min(odd, weight - shares[index])
        shares[index] += extra
        odd -= extra
    return head, shares


def _covers_beyond_ticket_moderateur(formula: Formula | None) -> bool:
    return formula is not None and (formula.brss_rate_pct > 100 or formula.flat_amount_cents > 0)


def responsible_rules(
    lines: Sequence[EpisodeLine],
    situation: Situation,
    *,
    formulas: Mapping[CareDomain, Formula],
    rule_sets: Sequence[RuleSet] | None = None,
) -> tuple[LineRule, ...]:
    """Per line of one episode of care, what the responsible-contract rules allow the insurer.

    The lines of an episode hold at most one optical equipment (two lenses and a frame; a lens
    line may carry both lenses as quantity 2) and at most one hearing aid per ear. Floors apply to
    domains the contract covers (has a formula for).
    """
    for episode_line in lines:
        episode_line.validate()
    if not situation.responsible:
        words = "not a responsible contract: no responsible-contract floor or cap applies"
        return tuple(LineRule(context=Reason(Rule.NOT_RESPONSIBLE, words)) for _ in lines)

    rules = [_base_rule(episode_line, situation, formulas, rule_sets) for episode_line in lines]
    _apply_optics_equipment(lines, rules, situation, formulas, rule_sets)
    return tuple(rules)


def _rule_set_for(line: CareLine, situation: Situation, rule_sets: Sequence[RuleSet] | None) -> RuleSet | None:
    return rule_set_on(situation.rules_on or line.care_date, rule_sets)


def _base_rule(
    episode_line: EpisodeLine,
    situation: Situation,
    formulas: Mapping[CareDomain, Formula],
    rule_sets: Sequence[RuleSet] | None,
) -> LineRule:
    """Everything but the optics equipment split: ticket modérateur floor, renewal, in-full lines,
    hearing cap, dental fee limits, non-OPTAM overruns."""
    line, facts = episode_line.line, episode_line.facts
    day = situation.rules_on or line.care_date
    rule_set = rule_set_on(day, rule_sets)
    if rule_set is None:
        return LineRule(context=Reason(Rule.NO_RULE_SET, f"no responsible-contract rule set on file for {day}"))
    amounts = _Amounts.of(line)
    formula = formulas.get(line.care_domain)
    floor = LineRule()
    exempt = line.care_domain is CareDomain.PHAR and line.amo_rate_pct in rule_set.tm_exempt_pharmacy_rates_pct
    if formula is not None and not exempt and amounts.ticket_moderateur:
        words = f"the responsible contract pays at least the ticket modérateur of {euros(amounts.ticket_moderateur)}"
        floor = LineRule(floor_cents=amounts.ticket_moderateur, floor_reason=Reason(Rule.TICKET_MODERATEUR, words))

    domain_from = rule_set.domain_from(line.care_domain)
    if day < domain_from:
        words = f"no responsible-contract rule for {line.care_domain.name} care before {domain_from}"
        return replace(floor, context=Reason(Rule.DOMAIN_NOT_IN_FORCE, words))

    refusal = _renewal_refusal(episode_line, situation, rule_set)
    if refusal is not None:
        return LineRule(payable=False, cap_cents=0, cap_reason=refusal)

    if _in_full(facts):
        in_full = amounts.in_full
        reason = Reason(
            Rule.IN_FULL, f"100 % Santé: covered in full within the regulated price of {euros(amounts.regulated or 0)}"
        )
        return LineRule(floor_cents=in_full, floor_reason=reason, cap_cents=in_full, cap_reason=reason)

    cap = _domain_cap(episode_line, situation, amounts, formula, rule_set)
    return floor if cap is None else _with_cap(floor, *cap)


def _domain_cap(
    episode_line: EpisodeLine, situation: Situation, amounts: _Amounts, formula: Formula | None, rule_set: RuleSet
) -> tuple[int, Reason] | None:
    """The cap of a hearing aid of class II, a moderated dental act, a non-OPTAM doctor's overrun."""
    line, facts = episode_line.line, episode_line.facts
    if facts.device_kind is DeviceKind.HEARING_AID and facts.hearing_class is HearingClass.II:
        limit = rule_set.hearing_class_ii_cap_cents
        cap = max(0, limit - amounts.amo) if rule_set.hearing_cap_includes_amo else limit
        words = f"hearing aid capped at the responsible-contract limit of {euros(limit)} per ear, AMO share included"
        return min(cap, amounts.after_amo), Reason(Rule.HEARING_CAP, words)
    if facts.dental_basket is DentalBasket.MODERATED and amounts.regulated is not None:
        words = f"moderated dental basket: covered within the fee limit of {euros(amounts.regulated)}"
        return amounts.in_full, Reason(Rule.DENTAL_FEE_LIMIT, words)
    if line.care_domain is CareDomain.CONS and not situation.doctor_in_optam and amounts.price > amounts.brss:
        return _non_optam_cap(amounts, formula, rule_set)
    return None


def _in_full(facts: ActFacts) -> bool:
    if facts.device_kind is DeviceKind.HEARING_AID:
        return facts.hearing_class is HearingClass.I and facts.regulated_price_cents is not None
    if facts.care_domain is CareDomain.DENT:
        return facts.dental_basket is DentalBasket.SANTE_100 and facts.regulated_price_cents is not None
    return facts.sante_100_class is Sante100Class.A and facts.regulated_price_cents is not None


def _with_cap(rule: LineRule, cap: int, reason: Reason) -> LineRule:
    return replace(rule, floor_cents=min(rule.floor_cents, cap), cap_cents=cap, cap_reason=reason)


def _non_optam_cap(amounts: _Amounts, formula: Formula | None, rule_set: RuleSet) -> tuple[int, Reason] | None:
    """R.871-2 2°: a non-OPTAM doctor's overrun, at most 100 % of the BRSS and at most what the
    contract pays an OPTAM doctor's overrun on the same act less 20 % of the BRSS."""
    if formula is None:
        return None
    promise = percent_of(amounts.brss, formula.brss_rate_pct) + formula.flat_amount_cents * amounts.quantity
    optam_cover = max(0, min(amounts.price - amounts.brss, promise - amounts.brss))
    below_optam = optam_cover - percent_of(amounts.brss, rule_set.non_optam_below_optam_brss_pct)
    allowed = max(0, min(percent_of(amounts.brss, rule_set.non_optam_max_brss_pct), below_optam))
    words = (
        f"fee overrun of a doctor outside OPTAM covered at most {euros(allowed)} "
        f"({rule_set.non_optam_max_brss_pct} % of the BRSS, and "
        f"{rule_set.non_optam_below_optam_brss_pct} % of the BRSS below an OPTAM doctor's)"
    )
    return min(amounts.after_amo, amounts.ticket_moderateur + allowed), Reason(Rule.NON_OPTAM_OVERRUN, words)


def _renewal_refusal(episode_line: EpisodeLine, situation: Situation, rule_set: RuleSet) -> Reason | None:
    line, facts = episode_line.line, episode_line.facts
    if line.care_domain is CareDomain.OPTI and facts.device_kind in {DeviceKind.FRAME, DeviceKind.LENS}:
        months = (
            rule_set.renewal_months_child
            if situation.age_years < rule_set.child_below_age
            else rule_set.renewal_months_adult
        )
        if situation.change_of_sight:
            months = min(months, rule_set.renewal_months_change_of_sight)
        return _too_soon(situation.history.optics, line.care_date, months, "glasses")
    if facts.device_kind is DeviceKind.HEARING_AID and episode_line.ear is not None:
        previous = situation.history.hearing.get(episode_line.ear, ())
        return _too_soon(
            previous, line.care_date, rule_set.hearing_renewal_months, f"a hearing aid for the {episode_line.ear} ear"
        )
    return None


def _too_soon(previous: Iterable[date], care_date: date, months: int, what: str) -> Reason | None:
    last = max((day for day in previous if day <= care_date), default=None)
    if last is None:
        return None
    next_day = add_months(last, months)
    if care_date >= next_day:
        return None
    words = f"renewal period not over until {next_day}: {what} last covered on {last}, one per {months} months"
    return Reason(Rule.RENEWAL_PERIOD, words)


def _apply_optics_equipment(
    lines: Sequence[EpisodeLine],
    rules: list[LineRule],
    situation: Situation,
    formulas: Mapping[CareDomain, Formula],
    rule_sets: Sequence[RuleSet] | None,
) -> None:
    """The class B part of an optical equipment: the frame limit, then the grid's cap and floor
    (by the two lenses' correction levels), split over the lines as the module says."""
    indexes = [
        i
        for i, episode_line in enumerate(lines)
        if episode_line.facts.device_kind in {DeviceKind.FRAME, DeviceKind.LENS}
        and episode_line.line.care_domain is CareDomain.OPTI
    ]
    if not indexes:
        return
    frames = [i for i in indexes if lines[i].facts.device_kind is DeviceKind.FRAME]
    levels = [
        lines[i].facts.correction_level
        for i in indexes
        for _ in range(lines[i].line.quantity)
        if lines[i].facts.device_kind is DeviceKind.LENS
    ]
    if len(frames) > 1 or sum(lines[i].line.quantity for i in frames) > 1 or len(levels) > 2:
        raise ValidationFailed("one optical equipment per episode: at most two lenses and one frame")
    first = min((lines[i].line for i in indexes), key=lambda line: line.care_date)
    rule_set = _rule_set_for(first, situation, rule_sets)
    # Lines already decided (refused, in full, no rule set, domain not in force) keep their answer.
    class_b = [
        i
        for i in indexes
        if rules[i].payable
        and rules[i].cap_cents is None
        and rules[i].context is None
        and lines[i].facts.sante_100_class is not Sante100Class.A
    ]
    if rule_set is None or not class_b:
        return
    frame = next((i for i in class_b if i in frames), None)
    lenses = [i for i in class_b if i not in frames]
    after_amo = {i: _Amounts.of(lines[i].line).after_amo for i in class_b}
    frame_room = None if frame is None else min(rule_set.frame_cap_cents, after_amo[frame])

    known = [level for level in levels if level is not None]
    if not known:
        row, label = None, "frame alone"
    else:
        pair = lens_pair(known[0], known[-1])  # one lens alone: its level for both
        row = rule_set.optics_grid[pair]
        label = f"grid {row.letter}: {pair[0].replace('_', ' ')}/{pair[1].replace('_', ' ')} lenses"

    cap_total = rule_set.frame_cap_cents if row is None else row.cap_cents
    frame_cap, lens_caps = _split(cap_total, frame_room, [after_amo[i] for i in lenses])
    floor_total = 0
    if row is not None and _covers_beyond_ticket_moderateur(formulas.get(CareDomain.OPTI)):
        floor_total = min(row.floor_cents, sum(after_amo.values()))
    frame_floor, lens_floors = _split(floor_total, frame_room, [after_amo[i] for i in lenses])

    floor_words = f"equipment raised to the responsible-contract floor of {euros(floor_total)} ({label})"
    if frame is not None:
        words = f"frame capped at the responsible-contract limit of {euros(rule_set.frame_cap_cents)}"
        rules[frame] = _equipment_rule(rules[frame], frame_cap, Reason(Rule.FRAME_CAP, words), frame_floor, floor_words)
    for index, cap, floor in zip(lenses, lens_caps, lens_floors, strict=True):
        words = f"lenses capped at the responsible-contract limit of {euros(cap_total)} for the equipment ({label})"
        if frame is not None:
            words += f", {euros(cap_total - frame_cap)} left after the frame"
        rules[index] = _equipment_rule(rules[index], cap, Reason(Rule.EQUIPMENT_CAP, words), floor, floor_words)


def _equipment_rule(rule: LineRule, cap: int, cap_reason: Reason, floor: int, floor_words: str) -> LineRule:
    if floor > rule.floor_cents:
        rule = replace(rule, floor_cents=floor, floor_reason=Reason(Rule.EQUIPMENT_FLOOR, floor_words))
    return _with_cap(rule, cap, cap_reason)


# -- with the engine ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponsibleLineQuote:
    # The engine's split with the insurer's share bounded; its ``limited_by`` is the engine's own
    # (the persisted ``Limit`` has no value for these rules yet): ``limited_by`` below says more.
    quote: LineQuote
    rule: LineRule
    formula_insurer_cents: int  # what the formula alone gave, before the regulation
    limited_by: Reason | None  # the rule that set the share, ``None`` when the formula did


def bound_quote(quote: LineQuote, rule: LineRule) -> ResponsibleLineQuote:
    after_amo = quote.price_cents - quote.amo_cents
    insurer, reason = rule.bound(quote.insurer_cents, after_amo_cents=after_amo)
    consumed = min(quote.ceiling_consumed_cents, insurer)
    bounded = replace(
        quote, insurer_cents=insurer, remainder_cents=after_amo - insurer, ceiling_consumed_cents=consumed
    )
    return ResponsibleLineQuote(bounded, rule, quote.insurer_cents, reason)


def quote_episode(
    lines: Sequence[EpisodeLine],
    situation: Situation,
    *,
    formulas: Mapping[CareDomain, Formula],
    consumed: Mapping[CeilingKey, int],
    rule_sets: Sequence[RuleSet] | None = None,
) -> tuple[ResponsibleLineQuote, ...]:
    """The engine's quote of an episode, each insurer share bounded by the responsible-contract
    rules before the next line is priced (so a cap releases what it cut of a yearly ceiling).
    A floor the regulation imposes does not consume the contract's yearly ceiling."""
    rules = responsible_rules(lines, situation, formulas=formulas, rule_sets=rule_sets)
    left: dict[CeilingKey, int] = {}
    results = []
    for episode_line, rule in zip(lines, rules, strict=True):
        line = episode_line.line
        formula = formulas.get(line.care_domain)
        key = CeilingKey(line.care_domain, line.care_date.year)
        ceiling_left: int | None = None
        if formula is not None and formula.yearly_ceiling_cents is not None:
            left.setdefault(key, max(0, formula.yearly_ceiling_cents - consumed.get(key, 0)))
            ceiling_left = left[key]
        result = bound_quote(quote_line(line, formula, ceiling_left_cents=ceiling_left), rule)
        if ceiling_left is not None:
            left[key] = ceiling_left - result.quote.ceiling_consumed_cents
        results.append(result)
    return tuple(results)
