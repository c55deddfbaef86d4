"""Route modules stay thin (STYLE rules 1 and 5): a service owns its unit of work and commits it with
its access event or security event, so that no answer leaves whose record did not commit; and the
SQL lives in services. (That no route module imports ``rempart.app`` or another domain's routes is
an import-linter contract of ``make lint``.)

Every route module (``api.py``, ``*_api.py``, ``pages.py``, ``*_pages.py`` under ``src/rempart``) is parsed with
``ast``; a call of ``.commit(``, ``.rollback(``, ``.execute(``, ``.scalar(``, ``.scalars(``,
``select(``, ``record_event(`` or ``record_access(`` in one fails this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rempart"

# What a handler never calls: the transaction's end, SQL, and the writing of a security event or an
# access event (the service that owns the unit of work writes it).
FORBIDDEN = frozenset({"commit", "rollback", "execute", "scalar", "scalars", "select", "record_event", "record_access"})


def route_modules() -> list[Path]:
    found = {*SRC.rglob("api.py"), *SRC.rglob("*_api.py"), *SRC.rglob("pages.py"), *SRC.rglob("*_pages.py")}
    return sorted(found)


def forbidden_calls(path: Path) -> list[tuple[int, str]]:
    """The lines of ``path`` that call ``<anything>.commit(...)``, ``select(...)`` and the like."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in FORBIDDEN:
            found.append((node.lineno, name))
    return sorted(found)


def test_the_route_modules_are_found() -> None:
    names = {path.relative_to(SRC).as_posix() for path in route_modules()}
    assert {"eligibility/api.py", "claims/api.py", "insurers/api.py", "identity/pages.py"} <= names


@pytest.mark.parametrize("path", route_modules(), ids=lambda path: path.relative_to(SRC).as_posix())
def test_no_route_module_commits_or_writes_sql(path: Path) -> None:
    found = forbidden_calls(path)
    assert not found, f"{path.relative_to(SRC)}: {found}: move this into the service the route calls"


def test_a_commit_is_found_wherever_it_is_written(tmp_path: Path) -> None:
    module = tmp_path / "api.py"
    module.write_text(
        "def handler(session):\n"
        "    if True:\n"
        "        runtime.sessions().commit()\n"
        "    rows = session.execute(select(Claim)).all()\n"
        "    return [session.commit() for _ in rows]\n",
        encoding="utf-8",
    )
    assert forbidden_calls(module) == [(3, "commit"), (4, "execute"), (4, "select"), (5, "commit")]
