"""``rempart incident open|scope|report|export`` on an operator's shell: readable, with the facts,
the clock, the timeline, and a zip per insurer whose manifest matches its files."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result

from rempart.audit.sealing import seal_all
from rempart.eligibility.service import RightsAnswer
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.eligibility.world import World, build_world, practice_principal
from tests.incidents.test_breach_drill import check
from tests.test_cli_input import refused, run


@pytest.fixture
def world(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("REMPART_KEK_FILE", str(runtime.settings.kek_file))
    monkeypatch.setenv("REMPART_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("REMPART_VAR_DIR", str(runtime.settings.var_dir))  # the log's signing keys live there
    return build_world(runtime, members=10)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return " ".join(result.output.split())


def test_open_scope_report_export(world: World, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    thief = practice_principal(world.runtime, Profession.PHARMACIST)
    for record in world.patients()[:2]:
        assert isinstance(check(world.runtime, thief, world.insurer, record, now - timedelta(minutes=5)), RightsAnswer)

    opened = ok(
        run(
            "incident", "open", "--title", "Stolen client key", "--nature", "confidentiality",
            "--contact", "securite@rempart.example",
        )
    )  # fmt: skip
    reference = opened.split()[0]
    assert reference.startswith("INC-")
    seal_all(world.runtime.sessions, signer=world.runtime.signing_keys)  # as the app's sealer does
    scoped = ok(
        run(
            "incident", "scope", reference, "--since", (now - timedelta(hours=1)).isoformat(),
            "--until", (now + timedelta(minutes=1)).isoformat(), "--actor", str(thief.client_id),
            env={"COLUMNS": "250"},
        )
    )  # fmt: skip
    assert f"{world.insurer.amc_number} {world.insurer.name} │ 2 │ 2 │ 0" in scoped  # people, records, only tried
    assert "access log verified" in scoped
    reported = ok(run("incident", "report", reference, env={"COLUMNS": "250"}))
    assert "processor's notice to the insurer" in reported
    assert "facts_computed" in reported

    out = tmp_path / "bundles"
    ok(run("incident", "export", reference, "--out", str(out)))
    (archive_path,) = out.iterdir()
    with zipfile.ZipFile(archive_path) as archive:
        manifest = json.loads(archive.read("MANIFEST.json"))
        for item in manifest["files"]:
            assert hashlib.sha256(archive.read(item["path"])).hexdigest() == item["sha256"]
        assert len([n for n in archive.namelist() if n.startswith("letters/fr/") and n.endswith(".pdf")]) == 2


def test_refusals_are_readable(world: World, tmp_path: Path) -> None:
    assert "no incident INC-1999-0001" in refused(run("incident", "report", "INC-1999-0001"))
    assert "ISO 8601" in refused(
        run("incident", "open", "--title", "x", "--nature", "confidentiality", "--contact", "c", "--aware-at", "hier"),
        code=2,
    )
    assert "nature is one or more of" in refused(
        run("incident", "open", "--title", "x", "--nature", "fire", "--contact", "c")
    )
    opened = ok(run("incident", "open", "--title", "x", "--nature", "integrity", "--contact", "c"))
    reference = opened.split()[0]
    assert "at least one compromised" in refused(run("incident", "scope", reference, "--since", "2026-01-01"), code=2)
    assert "scope it first" in refused(run("incident", "export", reference, "--out", str(tmp_path)))
