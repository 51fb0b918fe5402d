"""Training over several processes (torchrun, gloo on CPU): the same global batches as one
process, one run folder written by rank 0, resume; and the sharding it rests on.

Tolerances (docs/distributed.md): two processes compute each step of the single-process
run on the same global batch, up to floating-point rounding (the encoder's gradient is
summed in another order). vanilla then ends within a relative 1e-4 of the one-process
metrics. mi's critic (Adam on an adversarial objective) amplifies rounding, so its tiny
run is compared with a looser tolerance: losses within a relative 1e-3, accuracies within
0.01, the MI estimates within 3e-3 nats.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from midebias.cli import main
from midebias.datasets.tensors import TensorSplit
from midebias.distributed import shard_sizes
from midebias.training import TrainConfig, load_checkpoint, train
from midebias.training.run import RUN_FILES

TINY = ["--benchmark", "colored-mnist", "--source", "demo", "--no-audit", "--no-progress"]
TINY += ["--eval-every", "100"]  # evaluation (3,200 images) only after the last epoch: faster


def _split(n: int) -> TensorSplit:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = np.arange(n) % 2
    return TensorSplit.from_arrays(x, y, np.arange(n) % 3, 3)


def test_shard_sizes_split_a_batch_evenly():
    assert shard_sizes(10, 3) == (4, 3, 3)
    assert shard_sizes(64, 2) == (32, 32)
    assert sum(shard_sizes(57, 4)) == 57


@pytest.mark.parametrize("weighted", [False, True])
def test_shards_are_contiguous_parts_of_the_same_global_batches(weighted):
    split = _split(23)
    weights = torch.linspace(1, 2, 23) if weighted else None

    def batches(shard=None):
        gen = torch.Generator().manual_seed(5)
        kw = {"shuffle": True, "generator": gen, "weights": weights, "min_last": 3}
        return list(split.batches(7, shard=shard, **kw))

    whole = batches()
    parts = [batches((r, 3)) for r in range(3)]
    assert [len(p) for p in parts] == [len(whole)] * 3
    for i, b in enumerate(whole):
        assert b.sizes is None
        shards = [p[i] for p in parts]
        assert all(s.sizes == shard_sizes(len(b.y), 3) for s in shards)
        assert torch.equal(torch.cat([s.x for s in shards]), b.x)
        assert torch.equal(torch.cat([s.c for s in shards]), b.c)


def test_batch_smaller_than_the_processes_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "4")
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["train", *TINY, "--batch-size", "3", "--out", str(out)])
    assert e.value.code == 2
    assert "--batch-size 3 is smaller than the number of processes (4)" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------ two processes (slow)


def _torchrun(args: list[str], kill_after: int | None = None) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=2 -m midebias train ARGS` (gloo, CPU)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("MIDEBIAS_TEST_KILL_AFTER_EPOCH", None)
    if kill_after is not None:  # rank 0 SIGKILLs itself after that epoch's checkpoint
        env["MIDEBIAS_TEST_KILL_AFTER_EPOCH"] = str(kill_after)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "midebias", "train", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _one_process(args: list[str]) -> dict:
    """The same run in this process (its config from the same flags)."""
    flags = dict(zip(args[::2], args[1::2], strict=False))
    settings = {}
    if "--set" in flags:  # one KEY=VALUE, a number
        key, value = flags["--set"].split("=")
        settings[key] = float(value)
    cfg = TrainConfig(
        benchmark="colored-mnist",
        source="demo",
        method=flags["--method"],
        train_size=int(flags["--train-size"]),
        batch_size=int(flags["--batch-size"]),
        epochs=int(flags["--epochs"]),
        audit=False,
        progress=False,
        eval_every=100,
        settings=settings,
    )
    return train(cfg)


def _compare(one: dict, two: dict, *, rel: float, acc: float = 0.0, mi: float = 0.0):
    assert set(one) == set(two)
    for k, a in one.items():
        b = two[k]
        if k == "seconds_per_epoch":
            continue
        if isinstance(a, dict):
            _compare(a, b, rel=rel, acc=acc, mi=mi)
        elif k.endswith("accuracy") and acc:
            assert abs(a - b) <= acc, (k, a, b)
        elif k in ("mi", "mi_train") and mi:
            assert abs(a - b) <= mi, (k, a, b)
        elif isinstance(a, float):
            assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-6), (k, a, b)
        else:
            assert a == b, (k, a, b)


def _only_rank0_wrote(run: Path, epochs: int, result: subprocess.CompletedProcess) -> None:
    assert {p.name for p in run.iterdir()} <= set(RUN_FILES)
    assert not list(run.parent.glob(f".{run.name}.*"))  # no second (staged) run folder
    assert len((run / "metrics.jsonl").read_text().splitlines()) == epochs  # one writer
    assert json.loads((run / "config.json").read_text())["processes"] == 2
    assert result.stdout.count(" -> ") == 1  # one summary line
    # Every process held the same networks after every epoch (the loop checks and warns).
    assert "differ after epoch" not in result.stderr


@pytest.mark.slow
def test_vanilla_on_two_processes_matches_one(tmp_path):
    # 230 training images in global batches of 63: shards of 32 and 31 (uneven), last 41.
    args = [*TINY, "--method", "vanilla", "--train-size", "256", "--batch-size", "63"]
    args += ["--epochs", "2"]
    run = tmp_path / "run"
    two = _torchrun([*args, "--out", str(run)])
    assert two.returncode == 0, two.stderr[-3000:]
    _only_rank0_wrote(run, 2, two)
    metrics = json.loads((run / "metrics.json").read_text())
    _compare(_one_process(args[len(TINY) :]), metrics, rel=1e-4)


@pytest.mark.slow
def test_mi_on_two_processes_killed_and_resumed_matches_one(tmp_path):
    # One global batch (57 images: shards of 29 and 28) per epoch; the MI step is taken
    # (estimate above 0) in epoch 2; the run is killed after epoch 2 and resumed.
    args = [*TINY, "--method", "mi", "--train-size", "64", "--batch-size", "64"]
    args += ["--epochs", "3"]
    run = tmp_path / "run"
    killed = _torchrun([*args, "--out", str(run)], kill_after=2)
    assert killed.returncode != 0
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 2
    assert not (run / "metrics.json").exists()
    assert "differ after epoch" not in killed.stderr  # the MI step (epoch 2) kept them equal

    resumed = _torchrun([*args, "--out", str(run), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _only_rank0_wrote(run, 3, resumed)
    metrics = json.loads((run / "metrics.json").read_text())
    _compare(_one_process(args[len(TINY) :]), metrics, rel=1e-3, acc=0.01, mi=3e-3)


@pytest.mark.slow
def test_mi_with_the_gaussian_term_on_two_processes_matches_one(tmp_path):
    # The term's gradient joins each replica's task gradient: unless it is averaged over
    # the processes too, the replicas drift apart (the loop reports "differ after epoch").
    args = [*TINY, "--method", "mi", "--train-size", "64", "--batch-size", "64"]
    args += ["--epochs", "3", "--set", "gaussian=1"]
    run = tmp_path / "run"
    two = _torchrun([*args, "--out", str(run)])
    assert two.returncode == 0, two.stderr[-3000:]
    _only_rank0_wrote(run, 3, two)
    metrics = json.loads((run / "metrics.json").read_text())
    _compare(_one_process(args[len(TINY) :]), metrics, rel=1e-3, acc=0.01, mi=3e-3)


class _FakeDist:
    """Stands in for two processes whose copies of the networks differ."""

    rank, world_size, is_main = 0, 2, True

    def __init__(self):
        self.broadcasts = []

    def agree(self, t):
        return False

    def broadcast(self, t):
        self.broadcasts.append(t)
        return t


def test_replicas_that_differ_are_reported_and_replaced_by_rank0s():
    from midebias.methods import get_method
    from midebias.models import make_model
    from midebias.training.loop import _check_replicas

    method = get_method("mi")(make_model("mlp", 2, in_features=3), lr=1e-3, c_dim=3)
    fake = _FakeDist()
    with pytest.warns(RuntimeWarning) as caught:
        _check_replicas(method, fake, 4)
    said = [str(w.message) for w in caught]
    assert ["copies of 'model' differ" in said[0], "'estimator' differ" in said[1]] == [True] * 2
    assert all("differ after epoch 4; continuing from rank 0's" in m for m in said)
    sent = {t.data_ptr() for t in fake.broadcasts}
    for module in method.modules().values():  # every parameter and buffer from rank 0
        assert {t.data_ptr() for t in [*module.parameters(), *module.buffers()]} <= sent
