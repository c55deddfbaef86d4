"""Insurer-wide and platform-wide anomalies: the last complete hour against the day before.

A campaign spread over many accounts and practices, each below its own thresholds, still shows as a
jump in the beneficiaries checked for an insurer or platform-wide, or as a wave of misses. These
raise alerts only: stopping an insurer or a channel is a human decision (kill switches).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rempart.detection.clock import to_ms
from rempart.detection.models import AlertKind, Severity, SubjectKind
from rempart.detection.store import HOUR_MS, CounterStore
from rempart.detection.thresholds import DetectionConfig


@dataclass(frozen=True)
class Anomaly:
    scope: str  # "all" or an insurer id
    signal: str
    title: str
    value: int
    reference: float
    hour: int

    def alert(self) -> dict[str, Any]:
        insurer = None if self.scope == "all" else uuid.UUID(self.scope)
        return {
            "kind": AlertKind.AGGREGATE,
            "severity": Severity.HIGH,
            "title": self.title,
            "subject_kind": SubjectKind.PLATFORM if insurer is None else SubjectKind.INSURER,
            "subject_id": insurer,
            "signal": self.signal,
            "detail": {"value": self.value, "reference": round(self.reference, 1), "hour": self.hour},
            "dedupe_key": f"{self.signal}:{self.scope}:{self.hour}",
            "insurer_ids": [insurer] if insurer else [],
        }


def find_anomalies(store: CounterStore, config: DetectionConfig, now: datetime) -> list[Anomaly]:
    hour = to_ms(now) // HOUR_MS
    hours = list(range(hour - 25, hour))
    scopes: list[tuple[str, int]] = [("all", config.platform_hourly_floor)]
    active = store.active_insurers(since_ms=to_ms(now) - 2 * HOUR_MS)
    scopes += [(insurer, config.insurer_hourly_floor) for insurer in active]
    found = []
    for scope, floor in scopes:
        aggs = store.aggregates(scope=scope, hours=hours)
        last, history = aggs[-1], aggs[:-1]
        # The busier of the day's average hour and the same hour yesterday.
        reference = max(sum(h.distinct for h in history[-24:]) / 24, history[0].distinct, 1)
        where = "platform-wide" if scope == "all" else "for one insurer"
        if last.distinct >= floor and last.distinct >= config.aggregate_growth * reference:
            title = f"Beneficiaries checked {where} jumped"
            found.append(Anomaly(scope, "aggregate_volume", title, last.distinct, reference, last.hour))
        if last.checks >= config.aggregate_min_checks and last.misses / last.checks >= config.aggregate_miss_share:
            title = f"Share of misses {where} is high"
            found.append(Anomaly(scope, "aggregate_misses", title, last.misses, float(last.checks), last.hour))
    return found
