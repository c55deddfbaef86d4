"""A birth rank outside 1-9 (README, "Members files": "birth_rank (optional, 1-9)") is a rejected row
naming the field, whether the file is CSV or NDJSON and whatever JSON type carries it; only a
missing or blank rank means the first born."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rempart.members.importer import ImportReport, import_members
from rempart.members.synth import record_row
from rempart.members.validation import COLUMNS
from rempart.runtime import Runtime
from tests.factories import make_insurer, population


def _import(runtime: Runtime, tmp_path: Path, rows: list[dict[str, object]], name: str) -> ImportReport:
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as out:
        if name.endswith(".csv"):
            writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        else:
            out.writelines(json.dumps(row) + "\n" for row in rows)
    return import_members(runtime=runtime, path=path, amc_number="88450101")


@pytest.mark.parametrize(
    ("name", "rank"),
    [
        ("members.csv", "0"),
        ("members.ndjson", "0"),
        ("members.ndjson", 0),
        ("members.ndjson", False),
        # A digit to str.isdigit() that int() refuses: the import stopped on an internal error.
        ("members.csv", "\u00b2"),
        ("members.ndjson", "\u00b2"),
    ],
)
def test_a_birth_rank_of_zero_or_not_a_number_is_rejected_naming_the_field_in_csv_and_ndjson_alike(
    runtime: Runtime, tmp_path: Path, name: str, rank: object
) -> None:
    make_insurer(runtime)
    rows: list[dict[str, object]] = [dict(record_row(r)) for r in population(1)]
    rows[0]["birth_rank"] = rank

    report = _import(runtime, tmp_path, rows, name)

    first_line = 2 if name.endswith(".csv") else 1  # the CSV header is line 1
    assert report.beneficiaries_created == 0
    assert report.rejected == len(rows)
    assert (report.errors[0].line, report.errors[0].field) == (first_line, "birth_rank")
    assert report.errors[0].reason == "must be a number from 1 to 9"


@pytest.mark.parametrize(("name", "rank"), [("members.csv", ""), ("members.ndjson", ""), ("members.ndjson", None)])
def test_a_missing_birth_rank_is_the_first_born(runtime: Runtime, tmp_path: Path, name: str, rank: object) -> None:
    make_insurer(runtime)
    rows: list[dict[str, object]] = [dict(record_row(r)) for r in population(1)]
    for row in rows:
        row["birth_rank"] = rank

    report = _import(runtime, tmp_path, rows, name)

    assert (report.rejected, report.beneficiaries_created) == (0, len(rows))
