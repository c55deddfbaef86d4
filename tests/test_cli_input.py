"""Every ``rempart`` command answers bad input with a readable error on stderr and a non-zero exit,
never a traceback, and changes nothing when it refuses (``rempart audit`` has its own tests)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from rempart.cli import app
from rempart.config import get_settings
from rempart.identity.models import Account
from rempart.members.models import Beneficiary
from rempart.protection.models import InsurerKey
from rempart.runtime import Runtime
from tests.conftest import REDIS_URL
from tests.factories import load_members, make_insurer, members_file, population


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    get_settings.cache_clear()  # the command reads its settings from this environment
    return CliRunner().invoke(app, list(args), env=env)


def refused(result: Result, *, code: int = 1) -> str:
    """What the user reads of a refusal: a non-zero exit and a message on stderr, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stderr.strip()
    return " ".join(result.stderr.split())


@pytest.fixture
def use_kek(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMPART_KEK_FILE", str(runtime.settings.kek_file))


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``uvicorn.run`` recorded instead of serving: a refusal must come before it."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_a, **kw: calls.append(kw))
    return calls


# -- database URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("notaurl", "is not a URL"),
        ("mysql://localhost/rempart", "Rempart runs on SQLite"),
        ("postgresql+asyncpg://localhost/rempart", "Rempart runs on SQLite"),
        ("postgresql://127.0.0.1:1/rempart", "could not be used"),
    ],
)
def test_db_upgrade_refuses_a_database_url_it_cannot_use(url: str, said: str) -> None:
    assert said in refused(run("db", "upgrade", "--db", url))


def test_db_upgrade_refuses_a_folder_for_a_sqlite_file(tmp_path: Path) -> None:
    assert "is a folder" in refused(run("db", "upgrade", "--db", f"sqlite:///{tmp_path}"))


def test_a_command_on_a_sqlite_file_that_does_not_exist_creates_nothing(
    tmp_path: Path, kek_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMPART_KEK_FILE", str(kek_file))
    path = members_file(tmp_path, population(2))
    missing = tmp_path / "typo.db"
    for args in (
        ("members", "import", str(path), "--insurer", "88450101", "--db", f"sqlite:///{missing}"),
        ("keys", "rotate", "--insurer", "88450101", "--db", f"sqlite:///{missing}", "--grace", "0"),
        ("members", "import", str(path), "--insurer", "88450101", "--db", f"sqlite:///{tmp_path}/no/such/x.db"),
    ):
        assert "no database at" in refused(run(*args)), args
    monkeypatch.setenv("REMPART_DATABASE_URL", f"sqlite:///{missing}")
    assert "no database at" in refused(run("identity", "invite-platform-admin", "admin@example.org"))
    assert "no database at" in refused(run("identity", "suspend", "00000000-0000-0000-0000-000000000000"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["members.csv"]


def test_a_database_without_the_schema_says_to_upgrade_it(tmp_path: Path, kek_file: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    env = {"REMPART_KEK_FILE": str(kek_file)}
    said = refused(run("keys", "rotate", "--insurer", "88450101", "--db", f"sqlite:///{empty}", env=env))
    assert "rempart db upgrade" in said


def test_invalid_settings_are_named_not_a_traceback(tmp_path: Path) -> None:
    said = refused(run("synth", str(tmp_path / "x.csv"), env={"REMPART_TRUSTED_PROXIES": "*"}))
    assert "REMPART_TRUSTED_PROXIES" in said
    assert not (tmp_path / "x.csv").exists()


# -- key-encryption keys --------------------------------------------------------------------------


def _hostile_key_rings(tmp_path: Path) -> dict[str, dict[str, str]]:
    not_utf8 = tmp_path / "binary.json"
    not_utf8.write_bytes(b"\xff\xfe{")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    return {
        "missing": {"REMPART_KEK_FILE": str(tmp_path / "none.json")},
        "a folder": {"REMPART_KEK_FILE": str(tmp_path)},
        "not UTF-8": {"REMPART_KEK_FILE": str(not_utf8)},
        "nested past the parser": {"REMPART_KEK_FILE": str(deep)},
        "not JSON": {"REMPART_KEK": "{not json"},
        "a key of 24 bits": {"REMPART_KEK": '{"active": "a", "keys": {"a": "AAAA"}}'},
    }


@pytest.mark.parametrize(
    "ring", ["missing", "a folder", "not UTF-8", "nested past the parser", "not JSON", "a key of 24 bits"]
)
def test_a_key_ring_that_cannot_be_used_is_a_readable_refusal(
    runtime: Runtime, tmp_path: Path, ring: str, no_server: list[dict[str, Any]]
) -> None:
    env = {"REMPART_DATABASE_URL": runtime.settings.database_url, **_hostile_key_rings(tmp_path)[ring]}
    for args in (
        ("identity", "invite-platform-admin", "admin@example.org"),
        ("identity", "suspend", "00000000-0000-0000-0000-000000000000"),
        ("keys", "rotate", "--insurer", "88450101", "--grace", "0"),
        ("serve",),
    ):
        assert "key" in refused(run(*args, env=env)), args
    assert no_server == []
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 0


@pytest.mark.parametrize("reason", ["a\x00b", "two\nlines", "Compromised account", "x" * 65, ""])
def test_a_suspension_reason_the_api_would_refuse_leaves_the_account_active(
    runtime: Runtime, use_kek: None, reason: str
) -> None:
    from rempart.db import utcnow
    from rempart.identity.accounts import invite_account
    from rempart.identity.models import AccountStatus
    from rempart.identity.permissions import Role

    with runtime.sessions.begin() as session:
        invite_account(
            session=session, login="ops@example.org", roles={Role.SECURITY_OPERATOR}, now=utcnow(), invited_by=None
        )
    with runtime.sessions() as session:
        account = session.scalars(select(Account)).one()
    env = {"REMPART_DATABASE_URL": runtime.settings.database_url}

    said = refused(run("identity", "suspend", str(account.id), "--reason", reason, env=env))

    assert "--reason" in said
    with runtime.sessions() as session:
        still = session.get(Account, account.id)
        assert still is not None
        assert still.status != AccountStatus.SUSPENDED


# -- serve and demo -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--port", "99999999"),  # was served on another port (99999999 mod 65536)
        ("serve", "--port", "0"),
        ("serve", "--port", "-1"),
        ("serve", "--workers", "0"),
        ("serve", "--workers", "-3"),
        ("serve", "--workers", "100000"),
        ("demo", "--port", "70000"),
    ],
)
def test_a_port_or_worker_count_out_of_range_is_refused_before_serving(
    args: tuple[str, ...], no_server: list[dict[str, Any]], tmp_path: Path
) -> None:
    refused(run(*args, env={"REMPART_VAR_DIR": str(tmp_path)}), code=2)
    assert no_server == []
    assert list(tmp_path.iterdir()) == []


def test_serve_with_several_workers_and_no_redis_is_refused_before_serving(
    no_server: list[dict[str, Any]], tmp_path: Path
) -> None:
    said = refused(run("serve", "--workers", "2", env={"REMPART_VAR_DIR": str(tmp_path), "REMPART_REDIS_URL": ""}))
    assert "--workers 2 needs REMPART_REDIS_URL" in said
    assert no_server == []
    assert list(tmp_path.iterdir()) == []


def test_serve_leaves_x_forwarded_for_to_the_trusted_proxies_and_gives_its_lease_back(
    runtime: Runtime, use_kek: None, no_server: list[dict[str, Any]]
) -> None:
    env = {"REMPART_DATABASE_URL": runtime.settings.database_url, "REMPART_REDIS_URL": ""}
    assert run("serve", env=env).exit_code == 0
    assert run("serve", env=env).exit_code == 0  # the first one's lease went with it
    if REDIS_URL:  # shared records: any number of processes
        assert run("serve", "--workers", "3", env={**env, "REMPART_REDIS_URL": REDIS_URL}).exit_code == 0
        assert no_server[-1]["workers"] == 3
    # uvicorn would believe X-Forwarded-For from 127.0.0.1: only the app's REMPART_TRUSTED_PROXIES decides
    assert [call["proxy_headers"] for call in no_server] == [False] * len(no_server)


# -- members import -------------------------------------------------------------------------------


def test_a_members_file_that_is_a_folder_is_named_as_such(runtime: Runtime, tmp_path: Path, use_kek: None) -> None:
    make_insurer(runtime)
    said = refused(
        run("members", "import", str(tmp_path), "--insurer", "88450101", "--db", runtime.settings.database_url)
    )
    assert "is a folder" in said


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_members_file_is_refused(runtime: Runtime, tmp_path: Path, use_kek: None) -> None:
    make_insurer(runtime)
    path = members_file(tmp_path, population(2))
    path.chmod(0)
    said = refused(run("members", "import", str(path), "--insurer", "88450101", "--db", runtime.settings.database_url))
    assert "cannot be read" in said


def test_a_report_that_cannot_be_written_is_refused_before_importing(
    runtime: Runtime, tmp_path: Path, use_kek: None
) -> None:
    make_insurer(runtime)
    path = members_file(tmp_path, population(3))
    for report in (tmp_path / "no" / "such" / "folder.csv", tmp_path):
        said = refused(
            run(
                "members",
                "import",
                str(path),
                "--insurer",
                "88450101",
                "--db",
                runtime.settings.database_url,
                "--report",
                str(report),
            )
        )
        assert "--report" in said
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Beneficiary)) == 0


# -- keys rotate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value"), [("--grace", "inf"), ("--grace", "1e400"), ("--batch", "10" * 12)])
def test_a_rotation_with_a_wait_or_batch_past_any_use_changes_no_key(
    runtime: Runtime, use_kek: None, option: str, value: str
) -> None:
    insurer = make_insurer(runtime)
    load_members(runtime, insurer, population(3))

    def keys() -> list[tuple[str, int, str]]:
        with runtime.sessions() as session:
            rows = session.scalars(select(InsurerKey).where(InsurerKey.insurer_id == insurer.id))
            return sorted((str(k.purpose), k.version, str(k.state)) for k in rows)

    before = keys()
    args = ("keys", "rotate", "--insurer", insurer.amc_number, "--db", runtime.settings.database_url)
    refused(run(*args, *(("--grace", "0") if option == "--batch" else ()), option, value), code=2)
    assert keys() == before


# -- synth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--members", "3", "--products", ""), "--products"),
        (("--members", "3", "--products", " , ,"), "--products"),
        (("--members", "2", "--first-number", "9999999999"), "member numbers stop"),
    ],
)
def test_synth_refuses_options_that_make_no_members_file(tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    out = tmp_path / "members.csv"
    assert said in refused(run("synth", str(out), *args))
    assert not out.exists()


def test_synth_refuses_a_negative_first_member_number(tmp_path: Path) -> None:
    refused(run("synth", str(tmp_path / "m.csv"), "--first-number", "-5"), code=2)
    assert list(tmp_path.iterdir()) == []


def test_synth_into_a_folder_says_so(tmp_path: Path) -> None:
    assert "is a folder" in refused(run("synth", str(tmp_path), "--members", "2"))
