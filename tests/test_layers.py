"""Route modules do not commit (STYLE rule 1 and 5): a service owns its unit of work and commits it
with its access event or security event, so that no answer leaves whose record did not commit.

Every route module (``api.py``, ``*_api.py``, ``pages.py`` under ``src/rempart``) is parsed with
``ast``; any call of ``.commit(`` in one fails this test, unless the file is in ``STILL_COMMITTING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rempart"

# Route modules whose handlers still commit (issue 13, item 2, in progress in these domains). This
# list may only shrink: an entry whose file no longer commits fails the test, so remove it then.
STILL_COMMITTING = frozenset(
    {
        "audit/api.py",
        "detection/api.py",
    }
)


def route_modules() -> list[Path]:
    found = {*SRC.rglob("api.py"), *SRC.rglob("*_api.py"), *SRC.rglob("pages.py")}
    return sorted(found)


def commits_in(path: Path) -> list[int]:
    """The lines of ``path`` that call ``<anything>.commit(...)``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
    )


def test_the_route_modules_are_found() -> None:
    names = {path.relative_to(SRC).as_posix() for path in route_modules()}
    assert {"eligibility/api.py", "claims/api.py", "insurers/api.py", "identity/pages.py"} <= names


@pytest.mark.parametrize("path", route_modules(), ids=lambda path: path.relative_to(SRC).as_posix())
def test_no_route_module_commits(path: Path) -> None:
    name = path.relative_to(SRC).as_posix()
    lines = commits_in(path)
    if name in STILL_COMMITTING:
        assert lines, f"{name} no longer commits: remove it from STILL_COMMITTING"
    else:
        assert not lines, f"{name} commits at lines {lines}: move the commit into the service the route calls"


def test_every_allowlisted_module_exists() -> None:
    missing = sorted(name for name in STILL_COMMITTING if not (SRC / name).is_file())
    assert not missing, f"remove from STILL_COMMITTING: {missing}"


def test_a_commit_is_found_wherever_it_is_written(tmp_path: Path) -> None:
    module = tmp_path / "api.py"
    module.write_text(
        "def handler(session):\n"
        "    if True:\n"
        "        runtime.sessions().commit()\n"
        "    return [session.commit() for _ in ()]\n",
        encoding="utf-8",
    )
    assert commits_in(module) == [3, 4]
