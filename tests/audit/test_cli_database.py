"""``rempart audit`` pointed at a database it cannot use (not a URL, another kind of database, a
SQLite file that is not there, a server that does not answer, no Rempart schema): a readable message
and a non-zero exit, never a traceback, and no database file left behind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rempart.cli import app as cli


@pytest.fixture(autouse=True)
def _json_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI configures logging for the whole process: JSON, as the rest of the suite reads it."""
    monkeypatch.setenv("REMPART_LOG_JSON", "true")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on leaving: nothing listens there


COMMANDS = {
    "verify": ["audit", "verify"],
    "verify --event": ["audit", "verify", "--event", "#1"],
    "consistency": ["audit", "consistency", "--from", "1"],
    "seal --once": ["audit", "seal", "--once"],
    "export": ["audit", "export", "--insurer", "00000000-0000-0000-0000-000000000001", "--out", "heads.jsonl"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize(
    ("database", "says"),
    [
        ("not a url", "not a URL"),
        ("mysql://127.0.0.1/rempart", "Rempart runs on SQLite"),
        ("sqlite:///{tmp}/missing.db", "no database at"),
        ("sqlite:///{tmp}/empty.db", "no Rempart schema"),
        ("postgresql://127.0.0.1:{port}/rempart", "could not be used"),
    ],
    ids=["not a URL", "another database", "no such SQLite file", "no schema", "no server"],
)
def test_a_database_it_cannot_use_is_a_readable_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], database: str, says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.db").touch()
    url = database.format(tmp=tmp_path, port=_closed_port())

    result = CliRunner().invoke(cli, [*command, "--db", url])

    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a traceback
    assert result.exit_code == 1
    assert says in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "missing.db").exists()
