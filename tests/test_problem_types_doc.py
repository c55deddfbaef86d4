"""docs/integration.md lists every problem type the code has (``tools/problem_types.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rempart.errors import RempartError

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "integration.md"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("problem_types_tool", ROOT / "tools" / "problem_types.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_guide_s_table_is_the_code_s() -> None:
    tool = _tool()
    guide = GUIDE.read_text()
    assert tool.replaced(guide, tool.table()) == guide, (
        "docs/integration.md's problem types are out of date: run "
        "`.venv/bin/python tools/problem_types.py --write docs/integration.md`"
    )


def test_every_slug_in_the_table_and_the_errors_module_s_base_first() -> None:
    tool = _tool()
    slugs = {problem.slug for problem in tool.problem_types()}
    assert {"no-matching-rights", "invalid-dpop-proof", "slow-down", "validation-failed", "server-busy"} <= slugs
    assert "`not-found` | 404 | Not found | platform" in tool.table()


def test_a_document_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="problem-types"):
        _tool().replaced("# no table here\n", "| a |\n")


def test_a_subclass_defined_outside_the_package_is_not_in_the_table() -> None:
    # tests/test_app.py defines such a class; in the same worker, it must not change the guide's table.
    class Elsewhere(RempartError):
        status = 418
        slug = "defined-by-a-test"
        title = "Defined by a test"

    assert "defined-by-a-test" not in _tool().table()
