"""Identity's routes are thin: the services own the transaction and the security event (STYLE,
rules 1 and 5), so no route module commits, rolls back or writes a security event itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rempart.identity

IDENTITY = Path(rempart.identity.__file__).parent
ROUTE_MODULES = sorted([IDENTITY / "api.py", IDENTITY / "pages.py", *IDENTITY.glob("*_api.py")])


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr in {"commit", "rollback"}:
            found.append(f"{path.name}:{node.lineno}: .{node.attr}")
        if isinstance(node, ast.Name | ast.alias) and getattr(node, "id", getattr(node, "name", "")) == "record_event":
            found.append(f"{path.name}:{node.lineno}: record_event")
    return found


def test_the_route_modules_are_found() -> None:
    names = {p.name for p in ROUTE_MODULES}
    assert {"api.py", "auth_api.py", "me_api.py", "pages.py"} <= names
    assert len(names) >= 6


@pytest.mark.parametrize("path", ROUTE_MODULES, ids=lambda p: p.name)
def test_a_route_module_neither_commits_nor_writes_security_events(path: Path) -> None:
    assert _offences(path) == []


def test_the_check_sees_a_commit_and_an_event(tmp_path: Path) -> None:
    handler = tmp_path / "handler_api.py"
    handler.write_text(
        "from rempart.identity.events import record_event\n"
        "def route(session):\n    record_event(session=session)\n    session.commit()\n"
    )
    assert len(_offences(handler)) == 3
