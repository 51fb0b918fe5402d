"""The README's example runs as shipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Every test here trains or runs a script: the slow tier.
pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[1] / "examples" / "penalty_in_your_loop.py"


def test_penalty_example_runs():
    env = {**os.environ, "STEPS": "20", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "1.0"], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("weight 1.0: accuracy ")


def test_shortcut_example_runs():
    example = EXAMPLE.parent / "shortcut_in_your_loop.py"
    env = {**os.environ, "STEPS": "20", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(example)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert names == ["plain", "term", "step", "critic-only"]
