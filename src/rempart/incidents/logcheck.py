"""The access log's verification over a scope's windows: facts computed from a log that fails
``rempart audit verify`` say so, with the first problem found."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Engine

from rempart.audit.keys import PublicKeys
from rempart.audit.verify import verify_log
from rempart.incidents.facts import LogStatus, ScopeSet


def log_status(engine: Engine, *, keys: PublicKeys, sets: Sequence[ScopeSet], now: datetime) -> LogStatus:
    if not sets:
        return LogStatus(verified=True, events_checked=0)
    report = verify_log(engine, keys=keys, since=min(s.since for s in sets), now=now)
    problem = report.problems[0].describe() if report.problems else None
    return LogStatus(verified=report.ok, events_checked=report.events, problem=problem)
