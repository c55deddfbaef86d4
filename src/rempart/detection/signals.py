"""From counts to steps: each signal against its ladder, scaled by the practice's history, the
hour (usual or not) and the device (known or new). Pure functions, no input or output."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rempart.detection.store import Floors, ObservationResult, Role, SubjectCounts
from rempart.detection.thresholds import DetectionConfig, Ladder, ProfessionBaseline, Step

# Containment of a whole practice stops at slowing it down: refusing and suspending target the
# account or client (and the professional) whose own use crossed the line.
ROLE_CAP = {Role.ACTOR: Step.SUSPEND, Role.PROFESSIONAL: Step.SUSPEND, Role.PRACTICE: Step.SLOW}


@dataclass(frozen=True)
class Finding:
    key: str
    role: Role
    step: Step
    signal: str
    value: float
    threshold: float
    notices: tuple[tuple[str, float, float], ...]


def history_scale(config: DetectionConfig, base: float, ladder: Ladder) -> float:
    reference = ladder.slow or ladder.notice or ladder.step_up
    if not base or not reference:
        return 1.0
    return min(config.history_cap, max(1.0, base * config.history_headroom / reference))


def floors_of(config: DetectionConfig, baseline: ProfessionBaseline) -> Floors:
    """The smallest value at which each volume signal can reach a step (a notice included), whatever
    the hour, the network and the practice's history: below it, the store need not measure it."""
    # The history only raises thresholds (at least 1, unless the cap is below); a new network and
    # out-of-hours shrink them.
    history = min(1.0, config.history_cap)
    shrink = history * min(1.0, config.fresh_network_scale) * min(1.0, config.off_hours_scale)

    return Floors(
        distinct_5m=_floor(baseline.distinct_5m, shrink),
        distinct_1h=_floor(baseline.distinct_1h, shrink),
        insurers_24h=_floor(baseline.insurers_24h, history),
        new_24h=_floor(baseline.new_24h, history),
        unclaimed_24h=_floor(baseline.unclaimed_24h, history),
        unclaimed_7d=_floor(baseline.unclaimed_7d, history),
    )


_QUIET: dict[tuple[int, int], tuple[DetectionConfig, ProfessionBaseline, tuple[int, ...]]] = {}


def _quiet(config: DetectionConfig, baseline: ProfessionBaseline) -> tuple[int, ...]:
    """Values under which a subject's counts reach nothing, whatever the scales (cached)."""
    key = (id(config), id(baseline))
    found = _QUIET.get(key)
    if found is None or found[0] is not config or found[1] is not baseline:
        floors = floors_of(config, baseline)
        history = min(1.0, config.history_cap)
        shrink = history * min(1.0, config.fresh_network_scale) * min(1.0, config.off_hours_scale)
        values = (
            floors.distinct_5m,
            floors.distinct_1h,
            _floor(baseline.distinct_24h, shrink),
            _floor(config.off_hours_1h, 1.0),
            floors.insurers_24h,
            floors.new_24h,
            floors.unclaimed_24h,
            floors.unclaimed_7d,
            _floor(config.spread_24h, 1.0),
        )
        if len(_QUIET) > 100:
            _QUIET.clear()
        found = _QUIET[key] = (config, baseline, values)
    return found[2]


def _floor(ladder: Ladder, scale: float) -> int:
    """The smallest value that reaches a step of ``ladder`` at ``scale`` or more."""
    thresholds = [v for v in (ladder.notice, ladder.slow, ladder.step_up, ladder.suspend) if v is not None]
    if not thresholds:
        return 2**62  # never reaches a step
    return math.ceil(max(1.0, min(thresholds) * scale))


def evaluate(
    config: DetectionConfig, baseline: ProfessionBaseline, result: ObservationResult, now_ms: int
) -> list[Finding]:
    """Each subject's highest step and why, from the counts one observation returned."""
    cfg = config
    practice = next((c for c in result.subjects if c.role is Role.PRACTICE), None)
    s5 = s1 = s24 = s_new = s_unc = 1.0
    has_history = practice is not None and practice.base_24h > 0
    if practice is not None:
        s5 = history_scale(config, practice.base_5m, baseline.distinct_5m)
        s1 = history_scale(config, practice.base_1h, baseline.distinct_1h)
        s24 = history_scale(config, practice.base_24h, baseline.distinct_24h)
        s_new = history_scale(config, practice.base_new, baseline.new_24h)
        s_unc = history_scale(config, practice.base_unclaimed, baseline.unclaimed_24h)
    fresh = (
        bool(result.fresh_since_ms) and now_ms - result.fresh_since_ms < cfg.fresh_network_period.total_seconds() * 1000
    )
    off = cfg.off_hours_scale if result.off_hours else 1.0
    q5, q1, q24, q_off, q_ins, q_new, q_unc, q_unc7, q_spr = _quiet(config, baseline)
    findings = []
    for c in result.subjects:
        if (
            c.distinct_5m < q5
            and c.distinct_1h < q1
            and c.distinct_24h < q24
            and c.off_hours_1h < q_off
            and c.insurers_24h < q_ins
            and c.new_24h < q_new
            and c.unclaimed_24h < q_unc
            and c.unclaimed_7d < q_unc7
            and c.spread_24h < q_spr
            and not c.misses_24h
            and not c.locked_identities_1h
            and not (result.network_fresh and c.role is Role.ACTOR)
        ):
            # Every count under the lowest threshold it could have: no step, no notice (most checks).
            findings.append(Finding(c.key, c.role, Step.NONE, "", 0.0, 0.0, ()))
            continue
        device = cfg.fresh_network_scale if fresh and c.role is Role.ACTOR else 1.0
        signals = _signals(
            cfg,
            baseline,
            result,
            c,
            volume=(s5 * device * off, s1 * device * off, s24 * device),
            s_new=s_new if has_history else 0.0,
            s_unc=s_unc,
            s24=s24,
        )
        best = ("", 0.0, 0.0, Step.NONE)
        notices = []
        for name, value, ladder, scale in signals:
            step = ladder.step(value, scale=scale)
            if step >= Step.NOTICE:
                threshold = _threshold(ladder, step) * scale
                notices.append((name, round(float(value), 1), round(threshold, 1)))
                if step > best[3]:
                    best = (name, round(float(value), 1), round(threshold, 1), step)
        name, value, threshold, step = best
        step, name = _after_strikes(cfg, c, Step(min(step, ROLE_CAP[c.role])), name, now_ms)
        findings.append(Finding(c.key, c.role, step, name, value, threshold, tuple(notices)))
    return findings


def _signals(
    cfg: DetectionConfig,
    baseline: ProfessionBaseline,
    result: ObservationResult,
    c: SubjectCounts,
    *,
    volume: tuple[float, float, float],
    s_new: float,
    s_unc: float,
    s24: float,
) -> list[tuple[str, float, Ladder, float]]:
    """Every signal of one subject: (name, value, ladder, scale). ``s_new`` 0: no history yet."""
    signals: list[tuple[str, float, Ladder, float]] = [
        ("distinct_5m", c.distinct_5m, baseline.distinct_5m, volume[0]),
        ("distinct_1h", c.distinct_1h, baseline.distinct_1h, volume[1]),
        ("distinct_24h", c.distinct_24h, baseline.distinct_24h, volume[2]),
        ("off_hours_1h", c.off_hours_1h, cfg.off_hours_1h, 1.0),
    ]
    if s_new:
        # Every patient is new to a practice on its first day: "new" means something once the
        # practice has a day of its own to compare with.
        signals.append(("new_24h", c.new_24h, baseline.new_24h, s_new))
    # Share of misses among the distinct identities tried within the hour: probing, when high. Not
    # per professional: one of a hospital's night staff may mistype two dates among few checks;
    # the account or client making the requests carries the guesser's whole stream.
    probing = (
        c.role is not Role.PROFESSIONAL
        and bool(c.misses_1h)
        and c.misses_1h / max(c.distinct_1h, 1) >= cfg.miss_share_min
    )
    if probing:
        signals.append(("misses_1h", c.misses_1h, cfg.misses_1h, 1.0))
    if c.misses_24h:
        # Misses beyond a low rate, however many valid records dilute them.
        signals.append(("misses_24h", c.misses_24h - cfg.miss_rate * c.distinct_24h, cfg.misses_24h, 1.0))
    if c.role in (Role.ACTOR, Role.PRACTICE):
        # New patients checked and not billed, beyond the profession's honest share of them.
        rate = baseline.unclaimed_rate
        unclaimed, unclaimed_7d = (
            c.unclaimed_24h - rate * c.new_matured_24h,
            c.unclaimed_7d - rate * c.new_matured_7d,
        )
        signals.append(("unclaimed_24h", unclaimed, baseline.unclaimed_24h, s_unc))
        signals.append(("unclaimed_7d", unclaimed_7d, baseline.unclaimed_7d, s_unc))
        signals.append(("insurers_24h", c.insurers_24h, baseline.insurers_24h, s24))
    if c.role is Role.ACTOR:
        signals.append(("spread_24h", c.spread_24h, cfg.spread_24h, 1.0))
        if result.network_fresh:
            # The request came from a network the practice has not established (see thresholds).
            brought = result.network_new - cfg.returning_credit * result.network_returning
            signals.append(("fresh_network_new", brought, cfg.fresh_network_new, 1.0))
            missed = result.network_misses - cfg.miss_rate * result.network_checks
            signals.append(("fresh_network_misses", missed, cfg.fresh_network_misses, 1.0))
        if probing:
            # Cards tried again with another date after a miss, among mostly misses: guessing.
            signals.append(("locked_identities_1h", c.locked_identities_1h, cfg.locked_identities_1h, 1.0))
    return signals


def _after_strikes(config: DetectionConfig, c: SubjectCounts, step: Step, name: str, now_ms: int) -> tuple[Step, str]:
    """Once refused, the next offence within the strike memory goes one step further."""
    cap = ROLE_CAP[c.role]
    if (
        step >= Step.SLOW
        and c.peak >= Step.STEP_UP
        and now_ms - c.peak_at_ms < config.strike_memory.total_seconds() * 1000
        and c.peak + 1 > step
    ):
        return Step(min(c.peak + 1, cap)), name + "_repeat"
    return step, name


def repeated_notices(config: DetectionConfig, c: SubjectCounts, finding: Finding, days: int, now_ms: int) -> Finding:
    """A subject with notices on ``days`` distinct days of the week: at ``repeated_notices`` it
    leaves notices for the ladder (step-up, then suspension at the next offence)."""
    step = config.repeated_notices.step(days)
    if step <= max(finding.step, Step.NOTICE):
        return finding
    step, name = _after_strikes(config, c, Step(min(step, ROLE_CAP[c.role])), "repeated_notices", now_ms)
    if step <= finding.step:
        return finding
    threshold = float(config.repeated_notices.step_up or 0)
    return Finding(finding.key, finding.role, step, name, float(days), threshold, finding.notices)


def _threshold(ladder: Ladder, step: Step) -> float:
    value = {
        Step.NOTICE: ladder.notice,
        Step.SLOW: ladder.slow,
        Step.STEP_UP: ladder.step_up,
        Step.SUSPEND: ladder.suspend,
    }[step]
    assert value is not None
    return value
