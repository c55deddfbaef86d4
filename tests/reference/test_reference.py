"""The reference nomenclature: the shipped file loads, codes are looked up in the version in force on
the day of care, a bad file is refused whole naming its line, and a reload changes nothing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from typer.testing import CliRunner

from rempart.cli import app
from rempart.config import get_settings
from rempart.db import Base
from rempart.errors import Conflict, ValidationFailed
from rempart.insurers.models import CareDomain
from rempart.reference.models import DeviceKind, HearingClass, NomenclatureEntry, NomenclatureVersion
from rempart.reference.service import SHIPPED, act_on, acts_on, load, read_nomenclature
from rempart.runtime import Runtime

IN_2026 = date(2026, 11, 22)

# Every code the tests and the demo send, with the facts their lines carry:
# (domain, code, base in cents, AMO rate, 100 % Santé class, regulated price in cents).
USED_BY_TESTS = [
    (CareDomain.PHAR, "3400930000001", 1_000, 65, None, None),
    (CareDomain.OPTI, "2210546", 5, 60, "B", None),
    (CareDomain.OPTI, "2223345", 900, 60, "A", 3_000),
    (CareDomain.OPTI, "2203240", 5, 60, "A", 3_250),
    (CareDomain.CONS, "G", 3_000, 70, None, None),
    (CareDomain.CONS, "QZFA036", 200_000, 70, None, None),
    (CareDomain.DENT, "HBLD036", 12_000, 60, None, None),
    (CareDomain.HOSP, "GHS1234", 800_000, 80, None, None),
]

GOOD = {"code": "G", "domain": "CONS", "label": "Consultation", "base_cents": 3_000, "amo_rate_pct": 70}
FRAME_A = {
    "code": "2223345",
    "domain": "OPTI",
    "label": "Monture classe A",
    "base_cents": 900,
    "amo_rate_pct": 60,
    "sante_100_class": "A",
    "regulated_price_cents": 3_000,
    "device_kind": "frame",
}


def nomenclature(version: str, effective_from: str, entries: list[dict[str, Any]]) -> str:
    """A nomenclature file's text: strings as JSON strings (valid TOML basic strings), numbers as they are."""
    lines = [f'version = "{version}"', f"effective_from = {effective_from}", 'source = "tests"', ""]
    for entry in entries:
        lines.append("[[act]]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in entry.items())
        lines.append("")
    return "\n".join(lines)


def write(tmp_path: Path, text: str, name: str = "nomenclature.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.sessions.begin() as session:
        versions = session.scalar(select(func.count()).select_from(NomenclatureVersion))
        acts = session.scalar(select(func.count()).select_from(NomenclatureEntry))
    return versions or 0, acts or 0


def test_the_shipped_file_loads_and_every_code_the_tests_use_is_found(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        report = load(session=session)
    assert (report.version, report.effective_from, report.loaded) == ("2026-01", date(2026, 1, 1), True)

    with runtime.sessions.begin() as session:
        found = acts_on(session=session, day=IN_2026, keys=[(domain, code) for domain, code, *_ in USED_BY_TESTS])
        frame = act_on(session=session, care_domain=CareDomain.OPTI, code="2223345", day=IN_2026)
        hearing = act_on(session=session, care_domain=CareDomain.AUDI, code="2355084", day=IN_2026)
        wrong_domain = act_on(session=session, care_domain=CareDomain.PHAR, code="G", day=IN_2026)
    for domain, code, base, rate, klass, regulated in USED_BY_TESTS:
        act = found[(domain, code)]
        assert (act.base_cents, act.amo_rate_pct, act.sante_100_class, act.regulated_price_cents) == (
            base,
            rate,
            klass,
            regulated,
        ), code
    assert frame is not None
    assert frame.device_kind is DeviceKind.FRAME
    assert hearing is not None
    assert (hearing.base_cents, hearing.regulated_price_cents, hearing.hearing_class) == (
        40_000,
        95_000,
        HearingClass.I,
    )
    assert wrong_domain is None  # a code is known in its own domain only


def test_a_newer_version_applies_from_its_day_and_the_older_one_before(runtime: Runtime, tmp_path: Path) -> None:
    newer = write(tmp_path, nomenclature("2027-01", "2027-01-01", [{**GOOD, "base_cents": 3_500}, FRAME_A]))
    with runtime.sessions.begin() as session:
        load(session=session)
        load(session=session, path=newer)

    def g_on(day: date) -> tuple[str, int] | None:
        with runtime.sessions.begin() as session:
            act = act_on(session=session, care_domain=CareDomain.CONS, code="G", day=day)
        return None if act is None else (act.version, act.base_cents)

    assert g_on(date(2025, 12, 31)) is None  # before any version
    assert g_on(date(2026, 12, 31)) == ("2026-01", 3_000)
    assert g_on(date(2027, 1, 1)) == ("2027-01", 3_500)
    with runtime.sessions.begin() as session:
        # GS is in 2026-01 only: unknown for care once 2027-01 applies.
        assert act_on(session=session, care_domain=CareDomain.CONS, code="GS", day=date(2026, 6, 1)) is not None
        assert act_on(session=session, care_domain=CareDomain.CONS, code="GS", day=date(2027, 6, 1)) is None
    assert counts(runtime) == (2, 16)  # the older version's entries are kept


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({**GOOD, "code": "X1", "domain": "VETO"}, "domain 'VETO' is not one of PHAR"),
        ({**GOOD, "code": "X1", "base_cents": -1}, "base_cents must be a whole number of cents, 0 or more"),
        (GOOD, "CONS G is already listed at line 5"),
        ({k: v for k, v in FRAME_A.items() if k != "regulated_price_cents"}, "class A code needs its regulated price"),
        ({**GOOD, "code": "X1", "amo_rate_pct": 150}, "amo_rate_pct must be a whole percentage, 0 to 100"),
        ({**GOOD, "code": "X1", "amo_rate_pct": 65.5}, "amo_rate_pct must be a whole percentage, 0 to 100"),
        ({**GOOD, "code": "X1", "sante_100_class": "A"}, "CONS has no 100 % Santé class"),
        ({**FRAME_A, "device_kind": "lens"}, "a lens, and only a lens, has a correction"),
        ({**GOOD, "code": "X1", "rate": 70}, "unknown field 'rate'"),
    ],
    ids=["domain", "negative", "duplicate", "class-a-price", "rate", "rate-not-whole", "class", "lens", "field"],
)
def test_a_bad_entry_is_refused_naming_its_line_and_code(tmp_path: Path, bad: dict[str, Any], says: str) -> None:
    text = nomenclature("2026-02", "2026-02-01", [GOOD, bad])
    path = write(tmp_path, text)
    with pytest.raises(ValidationFailed) as refused:
        read_nomenclature(path)
    line = [n for n, row in enumerate(text.splitlines(), start=1) if row == "[[act]]"][1]
    assert (
        f"nomenclature.toml is refused, nothing was loaded: line {line} (code {bad['code']!r}): "
        in refused.value.detail
    )
    assert says in refused.value.detail


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("version = 'x'\neffective_from = 2026-01-01\n[[act]\n", "is not a TOML nomenclature file"),
        (nomenclature("2026-02", "2026-02-01T00:00:00", [GOOD]), "effective_from must be a date"),
        (nomenclature("2026 février", "2026-02-01", [GOOD]), "version must be a short name"),
        (nomenclature("2026-02", "2026-02-01", []), "the file has no [[act]] entries"),
    ],
    ids=["not-toml", "datetime", "version", "empty"],
)
def test_a_bad_header_or_file_is_refused(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        read_nomenclature(write(tmp_path, text))
    assert says in refused.value.detail


def test_a_bad_file_changes_nothing(runtime: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, nomenclature("2026-02", "2026-02-01", [FRAME_A, {**GOOD, "base_cents": -5}]))
    with pytest.raises(ValidationFailed), runtime.sessions.begin() as session:
        load(session=session, path=path)
    assert counts(runtime) == (0, 0)  # not even the good entry before the bad one


def test_loading_a_version_twice_changes_nothing_and_a_changed_one_needs_a_new_version(
    runtime: Runtime, tmp_path: Path
) -> None:
    with runtime.sessions.begin() as session:
        first = load(session=session)
    with runtime.sessions.begin() as session:
        again = load(session=session, path=SHIPPED)
    assert (first.loaded, again.loaded) == (True, False)
    assert "nothing changed" in again.message
    assert counts(runtime) == (1, first.codes)

    changed = write(tmp_path, nomenclature("2026-01", "2026-01-01", [GOOD]))
    with pytest.raises(Conflict, match="already loaded with other entries"), runtime.sessions.begin() as session:
        load(session=session, path=changed)
    same_day = write(tmp_path, nomenclature("2026-01b", "2026-01-01", [GOOD]))
    with pytest.raises(Conflict, match="already applies from 2026-01-01"), runtime.sessions.begin() as session:
        load(session=session, path=same_day)
    assert counts(runtime) == (1, first.codes)


def _cli(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv("REMPART_KEK_FILE", str(runtime.settings.kek_file))
    get_settings.cache_clear()  # fixtures may have read the settings before this variable was set
    return CliRunner().invoke(app, ["reference", *args, "--db", runtime.settings.database_url])


def test_the_cli_loads_shows_a_code_and_refuses_a_bad_file(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = _cli(runtime, monkeypatch, "load")
    assert loaded.exit_code == 0, loaded.output
    assert "reference 2026-01 loaded: 14 codes, for care from 2026-01-01" in loaded.output
    assert "nothing changed" in _cli(runtime, monkeypatch, "load", str(SHIPPED)).output

    shown = _cli(runtime, monkeypatch, "show", "HBLD634", "--domain", "DENT", "--on", "2026-11-22")
    assert shown.exit_code == 0, shown.output
    assert "HBLD634" in shown.output
    assert "120.00 EUR" in shown.output
    assert "500.00 EUR" in shown.output

    unknown = _cli(runtime, monkeypatch, "show", "ZZZ", "--on", "2026-11-22")
    assert unknown.exit_code == 1
    assert "code 'ZZZ' is unknown in reference 2026-01" in unknown.output
    before = _cli(runtime, monkeypatch, "show", "G", "--on", "2025-06-01")
    assert before.exit_code == 1
    assert "no reference version is in force on 2025-06-01" in before.output

    bad = write(tmp_path, nomenclature("2026-02", "2026-02-01", [{**GOOD, "domain": "VETO"}]))
    refused = _cli(runtime, monkeypatch, "load", str(bad))
    assert refused.exit_code == 1
    assert "nomenclature.toml is refused, nothing was loaded: line 5 (code 'G')" in refused.output
    missing = _cli(runtime, monkeypatch, "load", str(tmp_path / "missing.toml"))
    assert missing.exit_code == 1
    assert "no such file" in missing.output
    for result in (unknown, before, refused, missing):
        assert "Traceback" not in result.output
    assert counts(runtime) == (1, 14)


def test_the_schema_matches_the_models(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = compare_metadata(context, Base.metadata)
    ours = ("reference_acts", "reference_versions")
    assert [d for d in diffs if any(table in str(d) for table in ours)] == []
