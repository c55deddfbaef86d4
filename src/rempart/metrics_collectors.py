"""The platform's figures for ``/metrics``, read from the database at each scrape.

Beside the entry points rather than in ``rempart.web`` (request plumbing imports no domain) or in
one domain (they read three: the access log, detection, the insurers' import jobs). The app
registers :class:`PlatformCollector` on its ``rempart.web.metrics.Metrics``.

Every figure is a count by a closed set of labels (a level, a signal's name, a status): never an
id, never personal data. They are platform-wide: every app process reports the same numbers, so
an operator aggregates them with ``max``, not ``sum``.

- ``rempart_audit_seconds_since_last_checkpoint``: the access log's seal lag as operators first
  ask it ("when was the log last sealed?"); with no traffic it grows although nothing waits, so
- ``rempart_audit_oldest_unsealed_event_age_seconds`` says how long the oldest event not yet sealed
  has waited (0 when none waits): the figure to alert on, along with
- ``rempart_audit_unsealed_events``: the sealer's queue (its own small partial index).
- ``rempart_detection_containment_steps_total{subject_kind, step, signal}``: detection's actions
  (slowed down, step-up required, suspended, lifted), from its events table: every step is
  recorded there in the engine's own transaction, whichever process took it.
- ``rempart_detection_contained_subjects{subject_kind, level}``: who is contained now.
- ``rempart_detection_open_alerts{severity, status}``: alerts not yet closed.
- ``rempart_import_jobs{status}``: members import jobs by status (queued, running, done, failed).

A collector that cannot read (database down) says so with ``rempart_platform_metrics_up 0``
rather than failing the scrape: the HTTP figures still arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rempart.audit.models import AccessEvent, Checkpoint
from rempart.detection.models import Alert, AlertStatus, Containment, ContainmentLevel, DetectionEvent, EventKind
from rempart.insurers.jobs import ImportStatus, MembersImportJob
from rempart.insurers.models import Insurer
from rempart.logs import get_logger
from rempart.tenancy import tenant

log = get_logger("rempart.metrics")

# Detection's events that are containment steps, and the step each names.
_STEPS = {
    EventKind.SLOWED: "slow",
    EventKind.STEP_UP_REQUIRED: "step_up",
    EventKind.SUSPENDED: "suspended",
    EventKind.LIFTED: "normal",
}


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


class PlatformCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("rempart_platform_metrics_up", "1 when the platform's figures below could be read.")
        try:
            with self.sessions() as session:
                families = [*_audit(session), *_detection(session), *_imports(session)]
        except SQLAlchemyError as error:
            log.warning("metrics_unreadable", error_type=type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def _audit(session: Session) -> list[Metric]:
    now = datetime.now(UTC)
    last = session.scalar(select(func.max(Checkpoint.sealed_at)))
    oldest = session.scalar(
        select(AccessEvent.occurred_at).where(AccessEvent.seal_seq.is_(None)).order_by(AccessEvent.id).limit(1)
    )
    waiting = session.scalar(select(func.count()).select_from(AccessEvent).where(AccessEvent.seal_seq.is_(None)))
    since = GaugeMetricFamily(
        "rempart_audit_seconds_since_last_checkpoint",
        "Seconds since the access log's last signed checkpoint (absent before the first one).",
    )
    if last is not None:
        since.add_metric([], _age(now, last))
    age = GaugeMetricFamily(
        "rempart_audit_oldest_unsealed_event_age_seconds",
        "How long the oldest access event not yet sealed has waited; 0 when none waits.",
    )
    age.add_metric([], _age(now, oldest))
    queue = GaugeMetricFamily("rempart_audit_unsealed_events", "Access events waiting to be sealed.")
    queue.add_metric([], float(waiting or 0))
    return [since, age, queue]


def _detection(session: Session) -> list[Metric]:
    steps = CounterMetricFamily(
        "rempart_detection_containment_steps",
        "Containment steps taken by detection or lifted by an operator, by subject kind, step and signal.",
        labels=["subject_kind", "step", "signal"],
    )
    rows = session.execute(
        select(DetectionEvent.subject_kind, DetectionEvent.kind, DetectionEvent.signal, func.count())
        .where(DetectionEvent.kind.in_(list(_STEPS)))
        .group_by(DetectionEvent.subject_kind, DetectionEvent.kind, DetectionEvent.signal)
    )
    for subject_kind, kind, signal, count in rows:
        steps.add_metric([str(subject_kind), _STEPS[kind], signal or ""], count)
    contained = GaugeMetricFamily(
        "rempart_detection_contained_subjects",
        "Subjects (accounts, clients, professionals, practices) contained now, by kind and level.",
        labels=["subject_kind", "level"],
    )
    now_contained = session.execute(
        select(Containment.subject_kind, Containment.level, func.count())
        .where(Containment.lifted_at.is_(None), Containment.level != ContainmentLevel.NORMAL)
        .group_by(Containment.subject_kind, Containment.level)
    )
    for subject_kind, level, count in now_contained:
        contained.add_metric([str(subject_kind), str(level)], count)
    alerts = GaugeMetricFamily(
        "rempart_detection_open_alerts",
        "Alerts not yet closed, by severity and status (open, acknowledged).",
        labels=["severity", "status"],
    )
    not_closed = session.execute(
        select(Alert.severity, Alert.status, func.count())
        .where(Alert.status != AlertStatus.CLOSED)
        .group_by(Alert.severity, Alert.status)
    )
    for severity, status, count in not_closed:
        alerts.add_metric([str(severity), str(status)], count)
    return [steps, contained, alerts]


def _imports(session: Session) -> list[Metric]:
    """Import jobs live behind the tenant wall (row-level security on PostgreSQL): counted one
    insurer at a time, summed before they leave, so no insurer is named."""
    counts = dict.fromkeys(ImportStatus, 0)
    for insurer_id in session.scalars(select(Insurer.id)).all():
        with tenant(session, insurer_id):
            rows = session.execute(
                select(MembersImportJob.status, func.count())
                .where(MembersImportJob.insurer_id == insurer_id)
                .group_by(MembersImportJob.status)
            )
            for status, count in rows:
                counts[ImportStatus(status)] += count
    jobs = GaugeMetricFamily("rempart_import_jobs", "Members import jobs, by status.", labels=["status"])
    for status, count in counts.items():
        jobs.add_metric([status.value], count)
    return [jobs]
