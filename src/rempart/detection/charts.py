"""The security console's charts: series from the access log and detection's events, drawn as SVG
by pygal on the server (the CSP forbids inline script; pygal's SVG carries its own style, which is
fine in an image).

Each query is bounded: a window of the last 24 hours or 7 days, projected to the columns it counts,
and capped (``MAX_EVENTS``); past the cap the chart says it was cut rather than run on.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pygal  # type: ignore[import-untyped]  # pygal ships no type information
from pygal.style import Style  # type: ignore[import-untyped]
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from rempart.audit.disclosures import Operation
from rempart.audit.models import AccessEvent, Outcome
from rempart.detection.models import DetectionEvent, EventKind
from rempart.professionals.models import Practice

# pygal adds to ``sys.meta_path`` a finder for its map plugins (``pygal.maps.*``) that has only the
# legacy ``find_module``: every later import the ordinary finders miss then warns (ImportWarning), and
# warnings are errors in the tests. Rempart draws no map: the finder is taken out again.
sys.meta_path[:] = [finder for finder in sys.meta_path if type(finder).__module__ != "pygal"]

MAX_EVENTS = 500_000
TOP_PRACTICES = 15
PARIS = ZoneInfo("Europe/Paris")
_CHECKS = (Operation.RIGHTS_CHECK.value, Operation.RIGHTS_CHECK_BATCH.value)
_LADDER = (EventKind.SLOWED, EventKind.STEP_UP_REQUIRED, EventKind.SUSPENDED, EventKind.LIFTED)

_SCRIPT = re.compile(rb"<script\b[^>]*>.*?</script>|<script\b[^>]*/>", re.S)

CHARTS = ("checks", "misses", "practices", "containments")


@dataclass(frozen=True)
class Series:
    key: str  # stable, for tests and the table's headers
    values: list[float]


@dataclass(frozen=True)
class Chart:
    name: str
    labels: list[str]
    series: list[Series]
    truncated: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _hour_start(now: datetime) -> datetime:
    return _aware(now).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _check_rows(session: Session, *, since: datetime) -> tuple[Sequence[tuple[datetime, Outcome]], bool]:
    rows = session.execute(
        select(AccessEvent.occurred_at, AccessEvent.outcome)
        .where(AccessEvent.operation.in_(_CHECKS), AccessEvent.occurred_at >= since)
        .limit(MAX_EVENTS + 1)
    ).all()
    return [(r[0], r[1]) for r in rows[:MAX_EVENTS]], len(rows) > MAX_EVENTS


def _hours(now: datetime, hours: int) -> list[datetime]:
    last = _hour_start(now)
    return [last - timedelta(hours=h) for h in range(hours - 1, -1, -1)]


def _hour_labels(starts: list[datetime]) -> list[str]:
    return [s.astimezone(PARIS).strftime("%H:00") for s in starts]


def checks_per_hour(session: Session, *, now: datetime, hours: int = 24) -> Chart:
    """Rights checks per hour over the last ``hours``: answered, missed, refused."""
    starts = _hours(now, hours)
    rows, truncated = _check_rows(session, since=starts[0])
    counts: dict[str, Counter[datetime]] = {"answered": Counter(), "misses": Counter(), "refused": Counter()}
    for at, outcome in rows:
        bucket = _hour_start(at)
        if outcome is Outcome.DISCLOSED:
            counts["answered"][bucket] += 1
        elif outcome is Outcome.MISS:
            counts["misses"][bucket] += 1
        else:
            counts["refused"][bucket] += 1
    return Chart(
        name="checks",
        labels=_hour_labels(starts),
        series=[Series(key, [float(c[s]) for s in starts]) for key, c in counts.items()],
        truncated=truncated,
    )


def miss_share_per_hour(session: Session, *, now: datetime, hours: int = 24) -> Chart:
    """The share of rights checks that matched nobody, per hour (percent of answered and missed)."""
    checks = checks_per_hour(session, now=now, hours=hours)
    answered, misses = checks.series[0].values, checks.series[1].values
    share = [round(100 * m / (a + m), 1) if a + m else 0.0 for a, m in zip(answered, misses, strict=True)]
    return Chart(name="misses", labels=checks.labels, series=[Series("miss_share", share)], truncated=checks.truncated)


def distinct_per_practice(session: Session, *, now: datetime, hours: int = 24) -> Chart:
    """Distinct beneficiaries checked per practice over the last ``hours``: the busiest practices."""
    since = now - timedelta(hours=hours)
    distinct_count = func.count(distinct(AccessEvent.beneficiary_id))
    rows = session.execute(
        select(AccessEvent.practice_id, distinct_count)
        .where(
            AccessEvent.operation.in_(_CHECKS),
            AccessEvent.occurred_at >= since,
            AccessEvent.practice_id.is_not(None),
            AccessEvent.beneficiary_id.is_not(None),
        )
        .group_by(AccessEvent.practice_id)
        .order_by(distinct_count.desc())
        .limit(TOP_PRACTICES)
    ).all()
    ids = [r[0] for r in rows if r[0] is not None]
    names = dict(session.execute(select(Practice.id, Practice.name).where(Practice.id.in_(ids))).all()) if ids else {}
    labels = [(names.get(r[0]) if r[0] else None) or str(r[0])[:8] for r in rows]
    return Chart(
        name="practices", labels=labels, series=[Series("distinct_beneficiaries", [float(r[1]) for r in rows])]
    )


def containments_per_day(session: Session, *, now: datetime, days: int = 7) -> Chart:
    """The ladder's actions per day over the last ``days`` (Paris days): slowed, step-up, suspended, lifted."""
    today = _aware(now).astimezone(PARIS).date()
    day_list = [today - timedelta(days=d) for d in range(days - 1, -1, -1)]
    since = datetime.combine(day_list[0], datetime.min.time(), tzinfo=PARIS)
    rows = session.execute(
        select(DetectionEvent.occurred_at, DetectionEvent.kind)
        .where(DetectionEvent.kind.in_(_LADDER), DetectionEvent.occurred_at >= since)
        .limit(MAX_EVENTS + 1)
    ).all()
    counts: dict[EventKind, Counter[object]] = {k: Counter() for k in _LADDER}
    for at, kind in rows[:MAX_EVENTS]:
        counts[kind][_aware(at).astimezone(PARIS).date()] += 1
    return Chart(
        name="containments",
        labels=[d.strftime("%d/%m") for d in day_list],
        series=[Series(k.value, [float(counts[k][d]) for d in day_list]) for k in _LADDER],
        truncated=len(rows) > MAX_EVENTS,
    )


BUILDERS: dict[str, Callable[..., Chart]] = {
    "checks": checks_per_hour,
    "misses": miss_share_per_hour,
    "practices": distinct_per_practice,
    "containments": containments_per_day,
}


def compute(session: Session, name: str, *, now: datetime) -> Chart:
    return BUILDERS[name](session, now=now)


# -- drawing -------------------------------------------------------------------------------------

# Colours with enough contrast on white; the page's own palette.
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#52606d",
    colors=("#1d4ed8", "#b45309", "#b91c1c", "#047857"),
    font_family="system-ui, sans-serif",
)


def draw(chart: Chart, *, title: str, series_titles: dict[str, str], y_title: str = "") -> bytes:
    """``chart`` as a standalone SVG document; ``title`` and the series' titles already translated."""
    kinds: dict[str, Any] = {
        "checks": pygal.StackedBar,
        "misses": pygal.Line,
        "practices": pygal.HorizontalBar,
        "containments": pygal.StackedBar,
    }
    graph = kinds[chart.name](
        style=STYLE,
        title=title,
        y_title=y_title,
        js=[],  # no script: the image is static
        disable_xml_declaration=False,
        show_legend=True,
        legend_at_bottom=True,
        x_label_rotation=0 if chart.name == "practices" else 45,
        truncate_label=40,
        width=900,
        height=400,
        print_values=False,
        no_data_text=series_titles.get("_empty", "No data"),
    )
    if chart.name == "practices":
        # One bar per practice, each its own series so that its name shows in the legend.
        for label, value in zip(chart.labels, chart.series[0].values, strict=True):
            graph.add(label, [value])
    else:
        graph.x_labels = chart.labels
        for s in chart.series:
            graph.add(series_titles.get(s.key, s.key), s.values)
    rendered: bytes = graph.render()
    # pygal always writes its tooltips' configuration as an inline script; an image runs none, and
    # the CSP would refuse it anyway if the SVG were opened on its own. Left out.
    return _SCRIPT.sub(b"", rendered)
