"""The versions of the "contrat responsable" rules, read from ``rules/contrat-responsable-*.toml``.

One file per version of the regulation (article R.871-2 CSS); the version in force on a day is the
latest whose ``effective_from`` is on or before it, and each care domain may start later than its
version (hearing aids in 2021). The bundled files are read once.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from rempart.insurers.models import CareDomain


class CorrectionLevel(StrEnum):
    """A lens's correction, as R.871-2 3° a) to f) sort them (sphere and cylinder bounds)."""

    SIMPLE = "simple"
    COMPLEX = "complex"
    VERY_COMPLEX = "very_complex"


@dataclass(frozen=True)
class OpticsGridRow:
    letter: str
    floor_cents: int
    cap_cents: int


@dataclass(frozen=True)
class RuleSet:
    version: str
    effective_from: date
    tm_exempt_pharmacy_rates_pct: frozenset[int]
    optics_from: date
    frame_cap_cents: int
    child_below_age: int
    renewal_months_adult: int
    renewal_months_child: int
    renewal_months_change_of_sight: int
    optics_grid: Mapping[tuple[CorrectionLevel, CorrectionLevel], OpticsGridRow]
    hearing_from: date
    hearing_class_ii_cap_cents: int
    hearing_cap_includes_amo: bool
    hearing_renewal_months: int
    dental_from: date
    non_optam_max_brss_pct: int
    non_optam_below_optam_brss_pct: int

    def domain_from(self, domain: CareDomain) -> date:
        return {
            CareDomain.OPTI: self.optics_from,
            CareDomain.AUDI: self.hearing_from,
            CareDomain.DENT: self.dental_from,
        }.get(domain, self.effective_from)


LEVEL_ORDER = tuple(CorrectionLevel)


def lens_pair(first: CorrectionLevel, second: CorrectionLevel) -> tuple[CorrectionLevel, CorrectionLevel]:
    low, high = sorted((first, second), key=LEVEL_ORDER.index)
    return low, high


def parse_rule_set(data: Mapping[str, Any]) -> RuleSet:
    """One version of the rules from its TOML data; a missing or mistyped figure raises."""
    effective_from = data["effective_from"]
    optics, hearing, dental = data["optics"], data["hearing"], data["dental"]
    grid = {}
    for row in optics["grid"]:
        first, second = (CorrectionLevel(level) for level in row["lenses"])
        grid[lens_pair(first, second)] = OpticsGridRow(row["letter"], int(row["floor_cents"]), int(row["cap_cents"]))
    if len(grid) != len(LEVEL_ORDER) * (len(LEVEL_ORDER) + 1) // 2:
        raise ValueError(f"rule set {data['version']}: the optics grid must give every pair of correction levels")
    rule_set = RuleSet(
        version=str(data["version"]),
        effective_from=effective_from,
        tm_exempt_pharmacy_rates_pct=frozenset(data["ticket_moderateur"]["exempt_pharmacy_amo_rates_pct"]),
        optics_from=optics.get("effective_from", effective_from),
        frame_cap_cents=int(optics["frame_cap_cents"]),
        child_below_age=int(optics["child_below_age"]),
        renewal_months_adult=int(optics["renewal_months_adult"]),
        renewal_months_child=int(optics["renewal_months_child"]),
        renewal_months_change_of_sight=int(optics["renewal_months_change_of_sight"]),
        optics_grid=grid,
        hearing_from=hearing.get("effective_from", effective_from),
        hearing_class_ii_cap_cents=int(hearing["class_ii_cap_per_ear_cents"]),
        hearing_cap_includes_amo=bool(hearing["class_ii_cap_includes_amo"]),
        hearing_renewal_months=int(hearing["renewal_months"]),
        dental_from=dental.get("effective_from", effective_from),
        non_optam_max_brss_pct=int(data["consultations"]["non_optam_max_brss_pct"]),
        non_optam_below_optam_brss_pct=int(data["consultations"]["non_optam_below_optam_brss_pct"]),
    )
    for name in ("effective_from", "optics_from", "hearing_from", "dental_from"):
        if not isinstance(getattr(rule_set, name), date):
            raise ValueError(f"rule set {rule_set.version}: {name} must be a date")
    return rule_set


def load_rule_sets(directory: Traversable) -> tuple[RuleSet, ...]:
    """Every ``contrat-responsable-*.toml`` of a directory, oldest first."""
    sets = [
        parse_rule_set(tomllib.loads(entry.read_text(encoding="utf-8")))
        for entry in directory.iterdir()
        if entry.name.startswith("contrat-responsable-") and entry.name.endswith(".toml")
    ]
    return tuple(sorted(sets, key=lambda rule_set: rule_set.effective_from))


@cache
def bundled_rule_sets() -> tuple[RuleSet, ...]:
    """The rule sets shipped with Rempart, read once."""
    return load_rule_sets(files("rempart.pricing").joinpath("rules"))


def rule_set_on(day: date, rule_sets: Sequence[RuleSet] | None = None) -> RuleSet | None:
    """The version in force on ``day``: the latest that took effect on or before it."""
    in_force = [s for s in (bundled_rule_sets() if rule_sets is None else rule_sets) if s.effective_from <= day]
    return max(in_force, key=lambda rule_set: rule_set.effective_from, default=None)
