"""From counts to steps: each signal against its ladder, scaled by the practice's history, the
hour (usual or not) and the device (known or new). Pure functions, no input or output."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rempart.detection.store import Floors, ObservationResult, Role
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
        unfollowed=_floor(baseline.unfollowed, history),
        insurers_24h=_floor(baseline.insurers_24h, history),
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
            floors.unfollowed,
            floors.insurers_24h,
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
    s5 = history_scale(config, practice.base_5m, baseline.distinct_5m) if practice else 1.0
    s1 = history_scale(config, practice.base_1h, baseline.distinct_1h) if practice else 1.0
    s24 = history_scale(config, practice.base_24h, baseline.distinct_24h) if practice else 1.0
    fresh = (
        bool(result.fresh_since_ms) and now_ms - result.fresh_since_ms < cfg.fresh_network_period.total_seconds() * 1000
    )
    off = cfg.off_hours_scale if result.off_hours else 1.0
    q5, q1, q24, q_off, q_unf, q_ins = _quiet(config, baseline)
    findings = []
    for c in result.subjects:
        if (
            c.distinct_5m < q5
            and c.distinct_1h < q1
            and c.distinct_24h < q24
            and c.off_hours_1h < q_off
            and c.unfollowed < q_unf
            and c.insurers_24h < q_ins
            and not c.misses_1h
            and not c.locked_identities_1h
        ):
            # Every count under the lowest threshold it could have: no step, no notice (most checks).
            findings.append(Finding(c.key, c.role, Step.NONE, "", 0.0, 0.0, ()))
            continue
        device = cfg.fresh_network_scale if fresh and c.role is Role.ACTOR else 1.0
        signals: list[tuple[str, float, Ladder, float]] = [
            ("distinct_5m", c.distinct_5m, baseline.distinct_5m, s5 * device * off),
            ("distinct_1h", c.distinct_1h, baseline.distinct_1h, s1 * device * off),
            ("distinct_24h", c.distinct_24h, baseline.distinct_24h, s24 * device),
            ("off_hours_1h", c.off_hours_1h, cfg.off_hours_1h, 1.0),
        ]
        # Share of misses among the distinct identities tried within the hour: probing, when high.
        probing = bool(c.misses_1h) and c.misses_1h / max(c.distinct_1h, 1) >= cfg.miss_share_min
        if probing:
            signals.append(("misses_1h", c.misses_1h, cfg.misses_1h, 1.0))
        if c.role in (Role.ACTOR, Role.PRACTICE):
            if c.matured and c.unfollowed / c.matured >= cfg.unfollowed_share_min:
                signals.append(("unfollowed", c.unfollowed, baseline.unfollowed, s24))
            signals.append(("insurers_24h", c.insurers_24h, baseline.insurers_24h, s24))
        if c.role is Role.ACTOR and probing:
            # Cards tried again with another date after a miss, among mostly misses: guessing.
            signals.append(("locked_identities_1h", c.locked_identities_1h, cfg.locked_identities_1h, 1.0))
        best = ("", 0.0, 0.0, Step.NONE)
        notices = []
        for name, value, ladder, scale in signals:
            step = ladder.step(value, scale=scale)
            if step >= Step.NOTICE:
                threshold = _threshold(ladder, step) * scale
                notices.append((name, float(value), round(threshold, 1)))
                if step > best[3]:
                    best = (name, float(value), round(threshold, 1), step)
        name, value, threshold, step = best
        cap = ROLE_CAP[c.role]
        step = min(step, cap)
        if (
            step >= Step.SLOW
            and c.peak >= Step.STEP_UP
            and now_ms - c.peak_at_ms < cfg.strike_memory.total_seconds() * 1000
            and c.peak + 1 > step
        ):
            # Once refused, the next offence within the strike memory goes one step further.
            step, name = Step(min(c.peak + 1, cap)), name + "_repeat"
        findings.append(Finding(c.key, c.role, Step(step), name, value, threshold, tuple(notices)))
    return findings


def _threshold(ladder: Ladder, step: Step) -> float:
    value = {
        Step.NOTICE: ladder.notice,
        Step.SLOW: ladder.slow,
        Step.STEP_UP: ladder.step_up,
        Step.SUSPEND: ladder.suspend,
    }[step]
    assert value is not None
    return value
