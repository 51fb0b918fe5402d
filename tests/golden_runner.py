"""Runs the golden cases of tests/test_golden.py in a pinned numeric environment and prints
its metrics as JSON (timings left out).

The MI methods are chaotic from their first steps: a critic trained by Adam on a
Donsker-Varadhan bound turns a difference in the last bit of one matrix product into a
different model a few steps later. Which bits come out depends on the CPU (the vector
kernels the libraries dispatch to on it) and the thread count, so metrics recorded on one
machine are not those of another. test_golden.py therefore starts this script in a fresh
process with every such choice pinned before torch loads:

- one thread (reductions split across threads sum in another order);
- ``ATEN_CPU_CAPABILITY=default``: ATen's non-vectorised kernels, the same on any x86-64;
- ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility, the code path that
  gives the same results on every x86-64 processor;
- oneDNN (mkldnn) and NNPACK off, so convolutions go through ATen's own im2col and MKL.

Usage: ``python tests/golden_runner.py NAME`` (the environment is set by the caller, see
``PINNED_ENV`` in test_golden.py).
"""

from __future__ import annotations

import json
import sys

import torch

#: name -> (method, settings); each trains 2 epochs on 256 demo digits, evaluated once, no
#: audit.
CASES = {
    "vanilla": ("vanilla", {}),
    "mi-staged-gaussian": ("mi", {}),
    "mi-staged": ("mi", {"preset": "staged"}),
    "mi-balanced": ("mi", {"preset": "balanced"}),
    "mi-balanced-separate": ("mi", {"preset": "balanced-separate"}),
    "mi-strict": ("mi", {"preset": "strict"}),
    "mi-paper": ("mi", {"preset": "paper", "critic_steps": 3}),
    "mi-fast": ("mi", {"preset": "fast"}),
    "blindeye": ("blindeye", {}),
    "lnl": ("lnl", {}),
}


def run(method: str, settings: dict) -> dict:
    from midebias.training import TrainConfig, train

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
        eval_every=2,  # evaluate once, after the last epoch: most of a tiny run's time
    )
    m = train(cfg)
    return {k: v for k, v in m.items() if "seconds" not in k}


def main() -> int:
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)
    json.dump(run(*CASES[sys.argv[1]]), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
