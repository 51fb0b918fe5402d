"""The timing scripts under benchmarks/ run and write the JSON they promise (no timing is
asserted: speed is measured by the scripts, not by tests)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name, keys",
    [
        ("split_forward", {"seconds_per_step_whole", "seconds_per_step_halves"}),
        ("step_cost", {"seconds", "fraction_of_vanilla_step"}),
    ],
)
def test_timing_script_writes_its_json(tmp_path, name, keys):
    out = tmp_path / f"{name}.json"
    args = ["--source", "demo", "--repeats", "1", "--steps", "1", "--batch-size", "16"]
    assert _script(name).main([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert keys <= set(result)
    if name == "step_cost":
        seconds = result["seconds"]
        assert seconds["vanilla_step"] > 0 and seconds["critic_10x512"] > 0
        assert result["fraction_of_vanilla_step"]["vanilla_step"] == 1.0
