"""Importing a members file: what an insurer's data team sees, and what the database holds after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rempart.cli import app
from rempart.config import get_settings
from rempart.errors import ImportFileError
from rempart.members.importer import import_members
from rempart.members.models import Beneficiary, Card, Contract
from rempart.members.synth import record_row
from rempart.runtime import Runtime
from tests.factories import make_insurer, members_file, population


def _counts(runtime: Runtime) -> tuple[int, int, int]:
    with runtime.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Contract)) or 0,
            session.scalar(select(func.count()).select_from(Beneficiary)) or 0,
            session.scalar(select(func.count()).select_from(Card)) or 0,
        )


@pytest.mark.parametrize("name", ["members.csv", "members.ndjson"])
def test_a_clean_file_imports_every_member_and_twice_changes_nothing(
    runtime: Runtime, tmp_path: Path, name: str
) -> None:
    make_insurer(runtime)
    records = population(60)
    path = members_file(tmp_path, records, name)

    first = import_members(runtime=runtime, path=path, amc_number="88450101", batch_size=25)
    assert (first.rows, first.rejected, first.beneficiaries_created) == (len(records), 0, len(records))
    assert first.contracts_created == 60
    after_first = _counts(runtime)
    assert after_first == (60, len(records), 60)

    second = import_members(runtime=runtime, path=path, amc_number="88450101", batch_size=25)
    assert (second.beneficiaries_created, second.contracts_created, second.unchanged) == (0, 0, len(records))
    assert _counts(runtime) == after_first


def test_parallel_workers_import_the_same_as_one(runtime: Runtime, tmp_path: Path) -> None:
    make_insurer(runtime)
    records = population(80)
    rows = [record_row(r) for r in records]
    rows[10]["birth_date"] = "31/12/1980"
    path = tmp_path / "members.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    report = import_members(runtime=runtime, path=path, amc_number="88450101", batch_size=20, workers=2)

    family = sum(1 for r in rows if r["member_number"] == rows[10]["member_number"])
    assert report.rejected == family
    assert report.beneficiaries_created == len(rows) - family
    assert [e.field for e in report.errors if e.line == 11] == ["birth_date"]
    assert _counts(runtime)[1] == len(rows) - family


def test_bad_rows_are_reported_with_line_field_and_reason_and_their_contract_is_not_imported(
    runtime: Runtime, tmp_path: Path
) -> None:
    make_insurer(runtime)
    records = population(30)
    rows = [record_row(r) for r in records]
    bad_line = 6  # header is line 1: rows[4] is on line 6
    rows[4]["nir"] = rows[4]["nir"][:-2] + ("00" if rows[4]["nir"][-2:] != "00" else "01")
    bad_member = rows[4]["member_number"]
    path = tmp_path / "members.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    report = import_members(runtime=runtime, path=path, amc_number="88450101")

    assert any(e.line == bad_line - 1 and e.field == "nir" and "key" in e.reason for e in report.errors)
    family_size = sum(1 for r in rows if r["member_number"] == bad_member)
    assert report.rejected == family_size
    assert report.beneficiaries_created == len(rows) - family_size
    with runtime.sessions() as session:
        assert session.scalar(select(Contract.id).where(Contract.member_number == bad_member)) is None
    for error in report.errors:
        assert rows[4]["nir"] not in error.reason


def test_a_member_number_already_held_with_other_terms_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    make_insurer(runtime)
    records = population(5)
    import_members(runtime=runtime, path=members_file(tmp_path, records), amc_number="88450101")
    changed = [record_row(r) for r in records if r.member_number == records[0].member_number]
    for row in changed:
        row["product_code"] = "PREMIUM" if row["product_code"] != "PREMIUM" else "CONFORT"
    path = tmp_path / "changed.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in changed))
    before = _counts(runtime)

    report = import_members(runtime=runtime, path=path, amc_number="88450101")

    assert report.rejected == len(changed)
    assert all("already exists" in e.reason for e in report.errors)
    assert _counts(runtime) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"<html><body>members</body></html>\n", "not a CSV"),
        (b"member_number,nir\n0001,185057800608436\n", "lacks the column"),
    ],
)
def test_a_file_that_is_not_a_members_file_is_refused_whole(
    runtime: Runtime, tmp_path: Path, content: bytes, message: str
) -> None:
    make_insurer(runtime)
    path = tmp_path / "upload.dat"
    path.write_bytes(content)
    with pytest.raises(ImportFileError) as caught:
        import_members(runtime=runtime, path=path, amc_number="88450101")
    assert message in caught.value.detail
    assert _counts(runtime) == (0, 0, 0)


@pytest.mark.parametrize("name", ["members.csv", "members.ndjson"])
def test_a_truncated_file_changes_nothing(runtime: Runtime, tmp_path: Path, name: str) -> None:
    make_insurer(runtime)
    path = members_file(tmp_path, population(40), name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 37])  # cut inside the last record

    with pytest.raises(ImportFileError) as caught:
        import_members(runtime=runtime, path=path, amc_number="88450101", batch_size=10)
    assert "truncated" in caught.value.detail
    assert _counts(runtime) == (0, 0, 0)


def test_the_cli_reports_progress_counts_and_rejected_rows_without_personal_data(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_insurer(runtime)
    records = population(20)
    rows = [record_row(r) for r in records]
    rows[0]["sex"] = "F" if rows[0]["sex"] == "M" else "M"
    path = tmp_path / "members.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("REMPART_KEK_FILE", str(runtime.settings.kek_file))
    get_settings.cache_clear()  # fixtures may have read the settings before this variable was set
    report = tmp_path / "rejected.csv"

    result = CliRunner().invoke(
        app,
        [
            "members",
            "import",
            str(path),
            "--insurer",
            "88450101",
            "--db",
            runtime.settings.database_url,
            "--report",
            str(report),
            "--workers",
            "2",
        ],
    )

    assert result.exit_code == 2, result.output
    assert "rows/s" in result.output
    assert "rejected" in result.output
    assert "does not match the sex" in result.output
    assert "line,field,reason" in report.read_text()
    for record in records:
        assert record.nir not in result.output
        assert record.last_name not in result.output


def test_the_cli_refuses_an_unknown_insurer_with_a_readable_message(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMPART_KEK_FILE", str(runtime.settings.kek_file))
    get_settings.cache_clear()  # fixtures may have read the settings before this variable was set
    path = members_file(tmp_path, population(2))
    result = CliRunner().invoke(
        app, ["members", "import", str(path), "--insurer", "99999999", "--db", runtime.settings.database_url]
    )
    assert result.exit_code == 1
    assert "no insurer with this AMC number" in result.output
    assert "Traceback" not in result.output


def test_every_beneficiary_written_is_in_the_access_log_under_the_import(runtime: Runtime, tmp_path: Path) -> None:
    from rempart.audit.models import AccessEvent, ActorKind, Channel

    make_insurer(runtime)
    records = population(30)
    path = members_file(tmp_path, records, "members.csv")

    report = import_members(runtime=runtime, path=path, amc_number="88450101", batch_size=10, workers=2)

    with runtime.sessions() as session:
        written = set(session.scalars(select(Beneficiary.id)))
        # The breach question "whom did import X write", answered from the log alone.
        events = session.execute(
            select(AccessEvent.beneficiary_id, AccessEvent.actor_kind, AccessEvent.channel, AccessEvent.fields).where(
                AccessEvent.operation == "member_import", AccessEvent.reference == report.reference
            )
        ).all()
    assert report.reference.startswith("import_")
    assert len(events) == len(records) == len(written)
    assert {e.beneficiary_id for e in events} == written
    assert {(e.actor_kind, e.channel) for e in events} == {(ActorKind.SYSTEM, Channel.CLI)}
    assert all("nir" in e.fields.split(",") for e in events)


def test_an_import_is_not_written_when_the_log_refuses_it(runtime: Runtime, tmp_path: Path) -> None:
    from rempart.audit.service import AccessLogUnavailable
    from tests.audit.conftest import allow_event_writes, refuse_event_writes

    make_insurer(runtime)
    path = members_file(tmp_path, population(5), "members.csv")
    refuse_event_writes(runtime)
    try:
        with pytest.raises(AccessLogUnavailable):
            import_members(runtime=runtime, path=path, amc_number="88450101")
    finally:
        allow_event_writes(runtime)
    assert _counts(runtime) == (0, 0, 0)
