"""``bench.rights_check_app``'s app, with detection switched off when ``REMPART_BENCH_DETECTION=off``,
or the rights check's access event not recorded when ``REMPART_BENCH_ACCESS_LOG=off``.

``bench.detection`` (and ``bench.audit``) serve the same app twice, on and off, and alternate load
between them: the difference is what detection (or the access log) costs a rights check over HTTP.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from bench.rights_check_app import app
from rempart.detection.actor import Actor
from rempart.detection.engine import DetectionEngine, Verdict
from rempart.detection.memory import MemoryStore
from rempart.detection.thresholds import Step


class DetectionOff(DetectionEngine):
    """Admits everything, records nothing: the baseline."""

    def guard(self, actor: Actor, *, insurer_id: uuid.UUID | None = None) -> None:
        return None

    def guard_from_cache(self, actor: Actor, *, insurer_id: uuid.UUID | None = None) -> bool:
        return True  # answered on the event loop, as the real engine does between refreshes

    def observe(self, actor: Actor, **_: Any) -> Verdict:
        return Verdict(step=Step.NONE, slowed=False)

    def follow_up(self, *, practice_id: uuid.UUID, beneficiary_id: uuid.UUID) -> None:
        return None


if os.environ.get("REMPART_BENCH_DETECTION", "on") == "off":
    inner = getattr(app, "inner", app)  # bench.rights_check_app wraps its FastAPI app
    inner.state.detection = DetectionOff(store=MemoryStore(), sessions=inner.state.runtime.sessions)

if os.environ.get("REMPART_BENCH_ACCESS_LOG", "on") == "off":
    # As ``bench.audit`` does in process: the rights check exactly as with the log, minus the event.
    from rempart.eligibility import service as eligibility

    def _not_recorded(*_: Any, **__: Any) -> uuid.UUID:
        return uuid.uuid4()

    eligibility.record_practice_access = _not_recorded  # type: ignore[assignment]

__all__ = ["app"]
