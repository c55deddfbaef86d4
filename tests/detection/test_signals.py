"""The floors under which a count is not measured are below every threshold it could have."""

from __future__ import annotations

import itertools

from rempart.detection.signals import floors_of
from rempart.detection.thresholds import DEFAULT_CONFIG, Step


def test_a_count_under_its_floor_reaches_no_step_whatever_the_scales() -> None:
    cfg = DEFAULT_CONFIG
    for baseline in {id(b): b for b in [*cfg.professions.values(), cfg.default_profession]}.values():
        floors = floors_of(cfg, baseline)
        # Every scale a threshold can get: history (1 up to the cap), a new network, out of hours.
        scales = [
            h * d * o
            for h, d, o in itertools.product(
                (1.0, cfg.history_cap), (1.0, cfg.fresh_network_scale), (1.0, cfg.off_hours_scale)
            )
        ]
        for ladder, floor, volume in (
            (baseline.distinct_5m, floors.distinct_5m, True),
            (baseline.distinct_1h, floors.distinct_1h, True),
            (baseline.insurers_24h, floors.insurers_24h, False),
        ):
            for scale in scales if volume else (1.0, cfg.history_cap):
                assert ladder.step(floor - 1, scale=scale) is Step.NONE
            # …and the floor is not needlessly high: at the smallest scale, it reaches a step.
            assert ladder.step(floor, scale=min(scales) if volume else 1.0) > Step.NONE


def test_the_practice_is_told_each_signal_in_words_that_name_no_threshold() -> None:
    from rempart.detection.explain import for_practice
    from rempart.detection.thresholds import SLOW_ABUSE

    signals = {
        "distinct_5m",
        "distinct_1h",
        "distinct_24h",
        "off_hours_1h",
        "misses_1h",
        "locked_identities_1h",
        "insurers_24h",
        "refused_requests",
        "repeated_notices",
        *SLOW_ABUSE,
    }
    told = {signal: for_practice(signal) for signal in signals | {s + "_repeat" for s in signals}}
    for signal, words in told.items():
        assert "_" not in words
        assert not any(ch.isdigit() for ch in words), signal
        assert not words.startswith("This access was used unusually."), signal  # each has its own words
