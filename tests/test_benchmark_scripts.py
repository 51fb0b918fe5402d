"""The timing scripts benchmarks/step_cost.py and cuda_graphs.py run and write the JSON they
promise (no timing is asserted: speed is measured by the scripts, not by tests)."""

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


def test_cuda_graphs_runs_its_eager_steps_on_cpu(tmp_path):
    out = tmp_path / "graphs.json"
    args = ["--n", "1", "2", "--steps", "1", "--out", str(out)]
    assert _script("cuda_graphs").main(args) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["method"], r["n"]) for r in rows] == [
        ("vanilla", 1),
        ("vanilla", 2),
        ("mi", 1),
        ("mi", 2),
    ]
    assert all("error" not in r and r["eager_ms"] > 0 and "graph_ms" not in r for r in rows)


def test_collect_curves_and_plot_curves(tmp_path):
    """collect_curves.py reads run folders (with benchmark and strength); plot_curves.py
    draws its output."""
    for seed, strength in ((0, 0.02), (1, 0.05)):
        run = tmp_path / "runs" / f"r{seed}"
        run.mkdir(parents=True)
        cfg = {"method": "mi", "label": "mi", "benchmark": "colored-mnist"}
        cfg |= {"strength": strength, "seed": seed, "epochs": 2, "settings": {"lambda_": 2.0}}
        (run / "config.json").write_text(json.dumps(cfg))
        epochs = [
            {"epoch": 1, "losses": {"ce": 1.0, "mi": 0.5}},
            {"epoch": 2, "losses": {"ce": 0.5, "mi": 0.7}, "test_accuracy": 0.6 + seed / 10},
        ]
        (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in epochs))
    curves = tmp_path / "curves.json"
    assert _script("collect_curves").main([str(tmp_path / "runs"), "--out", str(curves)]) == 0
    runs = json.loads(curves.read_text())["runs"]
    assert {k: (r["strength"], r["benchmark"], r["finished"]) for k, r in runs.items()} == {
        "r0": (0.02, "colored-mnist", False),
        "r1": (0.05, "colored-mnist", False),
    }
    plot = _script("plot_curves")
    assert plot.series(runs["r1"]) == ([2], [0.7], [1, 2], [0.5, 0.7])
    png = tmp_path / "curves.png"
    assert plot.main([str(curves), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
