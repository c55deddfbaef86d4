"""Members files as insurers' tools write them: a spreadsheet's byte-order mark, and lines a JSON
parser cannot take apart, are read (or reported) like any other file, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rempart.errors import ImportFileError
from rempart.members.importer import import_members
from rempart.members.synth import record_row
from rempart.runtime import Runtime
from tests.factories import make_insurer, members_file, population

BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("name", ["members.csv", "members.ndjson", "members-export"])
def test_a_file_saved_with_a_byte_order_mark_imports_like_one_without(
    runtime: Runtime, tmp_path: Path, name: str
) -> None:
    # Spreadsheets save "CSV UTF-8" with a byte-order mark in front of the header.
    make_insurer(runtime)
    records = population(12)
    written = members_file(tmp_path, records, name if "." in name else f"{name}.csv")
    path = tmp_path / name
    path.write_bytes(BOM + written.read_bytes())

    report = import_members(runtime=runtime, path=path, amc_number="88450101")

    assert (report.rows, report.rejected, report.errors) == (len(records), 0, [])
    assert report.beneficiaries_created == len(records)


def test_a_line_nested_too_deep_to_parse_is_a_rejected_row_not_a_crash(runtime: Runtime, tmp_path: Path) -> None:
    make_insurer(runtime)
    records = population(10)
    rows = [json.dumps(record_row(r)) for r in records]
    rows.insert(3, '{"member_number": ' + "[" * 100_000 + "]" * 100_000 + "}")
    path = tmp_path / "members.ndjson"
    path.write_text("".join(row + "\n" for row in rows))

    report = import_members(runtime=runtime, path=path, amc_number="88450101")

    assert [(e.line, e.field, e.reason) for e in report.errors] == [(4, "*", "is not a JSON object")]
    assert report.beneficiaries_created == len(records)


def test_a_last_line_nested_too_deep_to_parse_refuses_the_file(runtime: Runtime, tmp_path: Path) -> None:
    make_insurer(runtime)
    rows = [json.dumps(record_row(r)) for r in population(4)] + ["[" * 100_000]
    path = tmp_path / "members.ndjson"
    path.write_text("".join(row + "\n" for row in rows))

    with pytest.raises(ImportFileError):
        import_members(runtime=runtime, path=path, amc_number="88450101")
