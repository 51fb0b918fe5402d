"""Behaviour kept across refactors: fixed tiny runs give the metrics recorded in
tests/data/golden_metrics.json (written by running this file with MIDEBIAS_WRITE_GOLDEN=1 on
the code before a refactor). Timings are left out; every other number must match."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from midebias.training import TrainConfig, train

#: Every test here trains or runs a script: the slow tier.
pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "data" / "golden_metrics.json"

#: name -> (method, settings); each trains 2 epochs on 256 demo digits, no audit.
CASES = {
    "vanilla": ("vanilla", {}),
    "mi-balanced": ("mi", {}),
    "mi-balanced-separate": ("mi", {"preset": "balanced-separate"}),
    "mi-strict": ("mi", {"preset": "strict"}),
    "mi-paper": ("mi", {"preset": "paper", "critic_steps": 3}),
    "mi-fast": ("mi", {"preset": "fast"}),
    "blindeye": ("blindeye", {}),
    "lnl": ("lnl", {}),
}


def _run(method: str, settings: dict) -> dict:
    cfg = TrainConfig(
        benchmark="colored-mnist",
        method=method,
        epochs=2,
        train_size=256,
        batch_size=64,
        source="demo",
        settings=settings,
        audit=False,
        progress=False,
    )
    m = train(cfg)
    return {k: v for k, v in m.items() if "seconds" not in k}


def _close(a, b, path=""):
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys differ: {sorted(set(a) ^ set(b))}"
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.parametrize("name", list(CASES))
def test_same_metrics_as_recorded(name):
    got = _run(*CASES[name])
    if os.environ.get("MIDEBIAS_WRITE_GOLDEN"):
        data = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        data[name] = got
        GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        pytest.skip("golden metrics written")
    _close(json.loads(GOLDEN.read_text())[name], got, name)
