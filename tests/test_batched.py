"""Batched training (midebias.training.batched): N runs in one computation are the N
single runs."""

from __future__ import annotations

import json

import pytest
import torch

from midebias.training import train
from midebias.training.batched import StackedAdam, check_batchable, train_batched
from midebias.training.config import TrainConfig
from midebias.training.run import load_checkpoint


def _cfg(method: str, seed: int, strength: float = 0.02, **kw) -> TrainConfig:
    base = dict(
        benchmark="colored-mnist",
        source="demo",
        method=method,
        train_size=200,
        batch_size=64,
        epochs=2,
        seed=seed,
        strength=strength,
        audit=False,
        progress=False,
        eval_every=100,
    )
    return TrainConfig(**{**base, **kw})


def _same(a, b, path="") -> None:
    """Equal, recursively (tensors bit for bit)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    else:
        assert a == b, (path, a, b)


def _without_timing(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "seconds_per_epoch"}


def _same_runs(tmp_path, single, batched, outs) -> None:
    """Single run i (folder single-i) and batched run i (outs[i]) have equal metrics and
    equal checkpoints, every tensor bit for bit (timings and the unused global RNG aside)."""
    for i, (s, b) in enumerate(zip(single, batched, strict=True)):
        assert _without_timing(s) == _without_timing(b)
        one = load_checkpoint(tmp_path / f"single-{i}" / "checkpoint.pt")
        many = load_checkpoint(outs[i] / "checkpoint.pt")
        for key in ("train_seconds", "history"):
            one.pop(key), many.pop(key)
        one["rng"].pop("torch"), many["rng"].pop("torch")  # the process's global RNG: unused
        _same(one, many)


@pytest.mark.slow
def test_batched_mi_reproduces_three_single_runs(tmp_path):
    # Three seeds, two bias strengths and two lambdas: every metric and every tensor of
    # every checkpoint (networks, critic, optimiser moments, the critic's running
    # statistics and recent z, the generators) equals the single run's.
    cfgs = [
        _cfg("mi", 0),
        _cfg("mi", 1, settings={"lambda_": 2.0}),
        _cfg("mi", 2, strength=0.04),
    ]
    single = [train(c, tmp_path / f"single-{i}") for i, c in enumerate(cfgs)]
    outs = [tmp_path / f"batched-{i}" for i in range(3)]
    batched = train_batched(cfgs, outs)
    _same_runs(tmp_path, single, batched, outs)
    for i in range(3):
        lines = [json.loads(x) for x in (outs[i] / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in lines] == [1, 2]
    # The runs differ from each other (each its own seed, data and lambda).
    assert len({b["final_losses"]["ce"] for b in batched}) == 3


@pytest.mark.slow
@pytest.mark.parametrize("method", ["vanilla", "mi"])
def test_batched_runs_with_the_cosine_schedule_reproduce_single_runs(method, tmp_path):
    # Every step's rate of the task's Adam (and mi's MI-step Adam, not its critic's) is the
    # single run's, and the param groups end as `fit` leaves them (lr and initial_lr).
    settings = {} if method == "vanilla" else {"settings": {"lambda_": 2.0}}
    cfgs = [
        _cfg(method, 0, lr_schedule="cosine", epochs=3),
        _cfg(method, 1, strength=0.04, lr_schedule="cosine", epochs=3, **settings),
    ]
    single = [train(c, tmp_path / f"single-{i}") for i, c in enumerate(cfgs)]
    outs = [tmp_path / f"batched-{i}" for i in range(2)]
    batched = train_batched(cfgs, outs)
    _same_runs(tmp_path, single, batched, outs)
    saved = load_checkpoint(outs[1] / "checkpoint.pt")
    groups = saved["method"]["optimizers"]["opt"]["param_groups"]
    assert groups[0]["initial_lr"] == cfgs[1].resolve().lr > groups[0]["lr"] > 0


@pytest.mark.slow
def test_batched_mi_with_grad_fraction_reproduces_single_runs(tmp_path):
    # The MI gradient through half of each batch (the encoder runs it in two parts).
    settings = {"grad_fraction": 0.5}
    cfgs = [_cfg("mi", 0, settings=settings), _cfg("mi", 1, settings={**settings, "lambda_": 2})]
    single = [train(c, tmp_path / f"single-{i}") for i, c in enumerate(cfgs)]
    outs = [tmp_path / f"batched-{i}" for i in range(2)]
    batched = train_batched(cfgs, outs)
    _same_runs(tmp_path, single, batched, outs)


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [
        # One Adam on the task gradient plus lambda_ x the clipped MI gradient, per run.
        {"preset": "balanced", "step": "summed"},
        # The critic trains on the batch's z before the MI gradient is taken (preset strict).
        {"preset": "balanced", "step": "summed", "critic_first": True},
        {"preset": "balanced", "step": "shared", "critic_first": True},
        # ... and the MI part kept from climbing the CE loss, run by run (preset guarded).
        {"preset": "balanced", "step": "summed", "critic_first": True, "no_uphill": True},
        # Preset staged: guarded after a first epoch without the MI step.
        {"preset": "staged"},
        # ... with a delay that ends inside the first epoch (3 steps an epoch here).
        {"preset": "staged", "delay_epochs": 0, "delay_steps": 2},
        # The default: the same with the closed-form Gaussian term (its own backward, as in
        # MIPenalty.step).
        {"delay_epochs": 0, "delay_steps": 2},
    ],
    ids=[
        "summed",
        "summed-critic-first",
        "shared-critic-first",
        "summed-no-uphill",
        "staged",
        "step-delay",
        "gaussian",
    ],
)
def test_batched_mi_with_the_summed_step_or_critic_first_reproduces_single_runs(tmp_path, settings):
    cfgs = [_cfg("mi", 0, settings=settings), _cfg("mi", 1, settings={**settings, "lambda_": 2})]
    single = [train(c, tmp_path / f"single-{i}") for i, c in enumerate(cfgs)]
    outs = [tmp_path / f"batched-{i}" for i in range(2)]
    batched = train_batched(cfgs, outs)
    _same_runs(tmp_path, single, batched, outs)


@pytest.mark.slow
def test_batched_vanilla_reproduces_single_runs():
    cfgs = [_cfg("vanilla", s) for s in (0, 1)]
    single = [_without_timing(train(c)) for c in cfgs]
    assert [_without_timing(m) for m in train_batched(cfgs)] == single


@pytest.mark.slow
def test_vectorized_batch_matches_within_float_rounding():
    # vmap (the GPU path) computes the same steps with other kernels: equal up to rounding
    # over a few steps (one epoch of 3 steps here; see the module doc for why not longer).
    cfgs = [_cfg("vanilla", s, epochs=1) for s in (0, 1)]
    single = [train(c) for c in cfgs]
    for s, b in zip(single, train_batched(cfgs, vectorize=True), strict=True):
        assert b["final_losses"]["ce"] == pytest.approx(s["final_losses"]["ce"], rel=1e-4)
        for k in ("val_accuracy", "test_accuracy", "train_accuracy"):
            assert abs(b[k] - s[k]) <= 0.01, k


def test_stacked_adam_is_torch_adam_per_run_with_a_mask():
    torch.manual_seed(0)
    ps = [torch.randn(4, 3, requires_grad=True) for _ in range(3)]
    lrs = [1e-3, 2e-3, 5e-4]
    opts = [torch.optim.Adam([p], lr=lr, weight_decay=0.1) for p, lr in zip(ps, lrs, strict=True)]
    stacked = torch.stack([p.detach() for p in ps]).requires_grad_()
    sa = StackedAdam([stacked], lrs, weight_decay=0.1)
    for step in range(6):
        grads = torch.randn(3, 4, 3) * (1e-7 if step % 2 else 1.0)  # noise-sized ones too
        mask = torch.tensor([True, step % 3 != 0, True])  # run 1 skips some steps
        for n, (p, o) in enumerate(zip(ps, opts, strict=True)):
            if mask[n]:
                p.grad = grads[n].clone()
                o.step()
        sa.step([grads], mask)
    for n, (p, o) in enumerate(zip(ps, opts, strict=True)):
        assert torch.equal(stacked[n], p)
        fresh = torch.optim.Adam([p], lr=lrs[n], weight_decay=0.1)
        sa.write_back(n, fresh, [p])
        _same(fresh.state_dict(), o.state_dict())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lr": 1e-4}, "differs from run 0 in lr"),
        ({"epochs": 3}, "differs from run 0 in epochs"),
        ({"settings": {"critic_steps": 5}}, "differs from run 0 in settings"),
    ],
)
def test_runs_that_differ_in_more_than_seed_strength_lambda_are_refused(change, message):
    cfgs = [_cfg("mi", 0).resolve(), _cfg("mi", 1, **change).resolve()]
    with pytest.raises(ValueError, match=message):
        check_batchable(cfgs)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (_cfg("lnl", 0), "supports vanilla and mi"),
        (_cfg("mi", 0, settings={"preset": "balanced-separate"}), "step=shared"),
        (_cfg("vanilla", 0, model="simple-conv"), "BatchNorm"),
    ],
)
def test_what_does_not_batch_is_refused_before_any_work(cfg, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        train_batched([cfg, cfg], [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists()


def test_two_runs_into_one_folder_are_refused(tmp_path):
    with pytest.raises(ValueError, match="same run folder"):
        train_batched([_cfg("vanilla", 0), _cfg("vanilla", 1)], [tmp_path / "x", tmp_path / "x"])
    assert not (tmp_path / "x").exists()
