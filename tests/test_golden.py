"""Behaviour kept across refactors: fixed tiny runs give the metrics recorded in
tests/data/golden_metrics.json. Timings are left out; every other number must match.

The runs go through tests/golden_runner.py in a fresh process whose numerics are pinned
(one thread, ATen's non-vectorised kernels, MKL's compatible code path, oneDNN and NNPACK
off): the MI methods turn a last-bit difference between two CPUs' kernels into another
model within a few steps, so unpinned metrics hold only on the machine that wrote them.
To record after an intended change of behaviour, run this file with
MIDEBIAS_WRITE_GOLDEN=1 and commit the JSON with the change that explains it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

#: Every test here trains: the slow tier.
pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
GOLDEN = HERE / "data" / "golden_metrics.json"
RUNNER = HERE / "golden_runner.py"

#: Set before torch loads in the runner's process (see golden_runner.py's docstring).
PINNED_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
}

sys.path.insert(0, str(HERE))
from golden_runner import CASES  # noqa: E402

if platform.machine().lower() not in ("x86_64", "amd64"):
    pytest.skip("golden metrics are recorded for x86-64's pinned numerics", allow_module_level=True)


def _metrics(name: str) -> dict:
    env = {**os.environ, **PINNED_ENV}
    done = subprocess.run(
        [sys.executable, str(RUNNER), name], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


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
    got = _metrics(name)
    if os.environ.get("MIDEBIAS_WRITE_GOLDEN"):  # one case at a time: run without -n
        data = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        data[name] = got
        GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        pytest.skip("golden metrics written")
    _close(json.loads(GOLDEN.read_text())[name], got, name)


def test_runner_pins_the_numerics():
    """The pins must take effect in the runner's process, or the recorded numbers would
    again depend on the machine."""
    env = {**os.environ, **PINNED_ENV}
    code = (
        "import golden_runner, torch;"
        "print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=HERE, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["DEFAULT", "1"]
