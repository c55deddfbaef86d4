"""The counter store's Redis scripts are package data, read with importlib.resources (a wheel
carries them: ``pyproject.toml`` lists ``detection/lua/*.lua``), and the escalation and notice
scripts carry the one block that spoils a practice's day for learning."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

from rempart.detection import redis_store

LUA = files("rempart.detection") / "lua"


def test_every_script_is_read_whole_with_its_included_block() -> None:
    spoil_day = (LUA / "spoil_day.lua").read_text(encoding="utf-8")
    assert "'dirty', '1'" in spoil_day
    for script in (redis_store._ESCALATE, redis_store._NOTICE):
        assert spoil_day in script
        assert "-- include:" not in script
    for script, last in (
        (redis_store._OBSERVE, "return struct.pack(fmt, unpack(out))"),
        (redis_store._ESCALATE, "return {before, step}"),
        (redis_store._NOTICE, "return #kept"),
        (redis_store._LIFT, "return 1"),
        (redis_store._FOLLOW_UP, "return 1"),
    ):
        assert script.rstrip().endswith(last)


def test_the_scripts_are_package_data() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert "detection/lua/*.lua" in pyproject["tool"]["setuptools"]["package-data"]["rempart"]
    assert {p.name for p in LUA.iterdir() if p.name.endswith(".lua")} >= {
        "observe.lua",
        "escalate.lua",
        "notice.lua",
        "lift.lua",
        "follow_up.lua",
        "spoil_day.lua",
    }
