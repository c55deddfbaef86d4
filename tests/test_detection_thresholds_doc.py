"""docs/integration.md shows detection's thresholds as the code has them
(``tools/detection_thresholds.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "detection_thresholds_tool", ROOT / "tools" / "detection_thresholds.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_guide_s_thresholds_are_the_code_s() -> None:
    tool = _tool()
    guide = (ROOT / "docs" / "integration.md").read_text()
    assert tool.replaced(guide, tool.table()) == guide, (
        "docs/integration.md's detection thresholds are out of date: run "
        "`.venv/bin/python tools/detection_thresholds.py --write docs/integration.md`"
    )


def test_professions_with_the_same_baseline_share_a_row() -> None:
    table = _tool().table()
    assert "| physician, midwife | 5 / 8 / 12 |" in table
    assert "| optician | 5 / 8 / 12 | 10 / 15 / 20 / 30 |" in table
