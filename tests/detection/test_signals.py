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
