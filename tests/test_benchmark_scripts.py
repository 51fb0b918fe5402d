"""The timing script benchmarks/step_cost.py runs and write the JSON they promise (no timing is
asserted: speed is measured by the scripts, not by tests)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_cost_writes_its_json(tmp_path):
    out = tmp_path / "step_cost.json"
    args = ["--source", "demo", "--repeats", "1", "--steps", "1", "--batch-size", "16"]
    assert _script("step_cost").main([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"seconds", "fraction_of_vanilla_step"} <= set(result)
    seconds = result["seconds"]
    assert seconds["vanilla_step"] > 0 and seconds["critic_10x512"] > 0
    assert seconds["vanilla_step_two_halves"] > 0
    assert result["fraction_of_vanilla_step"]["vanilla_step"] == 1.0
