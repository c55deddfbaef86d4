"""Print detection's volume thresholds per profession as the integration guide's markdown table.

    python tools/detection_thresholds.py                              # the table
    python tools/detection_thresholds.py --write docs/integration.md  # replace it in the guide

From ``rempart.detection.thresholds.PROFESSIONS``: professions with the same baseline share a row.
``tests/test_detection_thresholds_doc.py`` fails when the guide's copy is out of date.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from rempart.detection.thresholds import PROFESSIONS, Ladder, OpeningHours

START = "<!-- detection-thresholds:start (tools/detection_thresholds.py --write docs/integration.md) -->"
END = "<!-- detection-thresholds:end -->"
_HEADER = (
    "| profession | in 5 min: slow / step-up / suspend | in 1 h: notice / slow / step-up / suspend "
    "| in 24 h: notice / slow / step-up / suspend | checked and not billed within the claim delay, in 24 h "
    "| claim delay | usual hours (Paris) |\n|---|---|---|---|---|---|---|\n"
)


def _ladder(ladder: Ladder, steps: tuple[str, ...]) -> str:
    values = (getattr(ladder, step) for step in steps)
    return " / ".join("–" if value is None else f"{value:g}" for value in values)


def _delay(delay: timedelta) -> str:
    if delay.days:
        return f"{delay.days} days"
    minutes = int(delay.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes >= 60 else f"{minutes} min"


def _hours(opening: OpeningHours) -> str:
    if opening.start_hour == 0 and opening.end_hour == 24 and len(opening.days) == 7:
        return "always"
    days = "every day" if len(opening.days) == 7 else "Mon–Sat" if opening.days == frozenset(range(6)) else "some days"
    return f"{opening.start_hour}:00–{opening.end_hour}:00, {days}"


def table() -> str:
    rows: dict[str, list[str]] = {}
    for profession, baseline in PROFESSIONS.items():
        row = " | ".join(
            [
                _ladder(baseline.distinct_5m, ("slow", "step_up", "suspend")),
                _ladder(baseline.distinct_1h, ("notice", "slow", "step_up", "suspend")),
                _ladder(baseline.distinct_24h, ("notice", "slow", "step_up", "suspend")),
                _ladder(baseline.unclaimed_24h, ("notice", "slow", "step_up", "suspend")),
                _delay(baseline.claim_delay),
                _hours(baseline.opening),
            ]
        )
        rows.setdefault(row, []).append(profession)
    return _HEADER + "".join(f"| {', '.join(names)} | {row} |\n" for row, names in rows.items())


def replaced(document: str, new_table: str) -> str:
    head, start, rest = document.partition(START)
    _old, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the document has no {START!r} … {END!r} section")
    return f"{head}{START}\n{new_table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--write", type=Path, help="replace the table between the markers of this file")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(table())
    else:
        args.write.write_text(replaced(args.write.read_text(), table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
