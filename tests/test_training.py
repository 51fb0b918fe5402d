"""The training loop: run folders, determinism, metrics, errors."""

from __future__ import annotations

import json
import math

import pytest
import torch

from midebias.datasets import colored_mnist
from midebias.methods import Vanilla
from midebias.training import TrainConfig, TrainingError, read_run, train


@pytest.fixture(scope="module")
def tiny(demo_mnist):
    return colored_mnist(*demo_mnist, bias_var=0.02, seed=0, train_size=512)


def _cfg(**kw):
    base = dict(epochs=2, batch_size=64, source="demo", train_size=512, audit=False, progress=False)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_run_folder_contents(tiny, tmp_path):
    m = train(_cfg(), tmp_path / "run", data=tiny)
    run = read_run(tmp_path / "run")
    assert len(run["history"]) == 2
    assert run["metrics"] == json.loads(json.dumps(m))
    for key in [
        "test_accuracy",
        "aligned_accuracy",
        "val_accuracy",
        "train_accuracy",
        "seconds_per_epoch",
        "epochs",
        "method",
        "benchmark",
        "seed",
    ]:
        assert key in m
    assert run["config"]["method"] == "vanilla" and run["config"]["lr"] == 1e-3
    assert (tmp_path / "run" / "checkpoint.pt").exists()
    # Learning happened: training accuracy far above chance on the biased training set.
    assert m["train_accuracy"] > 0.5


@pytest.mark.slow
def test_same_seed_same_result_other_seed_differs(tiny):
    a = train(_cfg(epochs=1), data=tiny)
    b = train(_cfg(epochs=1), data=tiny)
    c = train(_cfg(epochs=1, seed=1), data=tiny)
    drop = ("seconds_per_epoch", "final_losses")
    strip = lambda m: {k: v for k, v in m.items() if k not in drop}  # noqa: E731
    assert strip(a) == strip(b)
    assert a["final_losses"]["ce"] == b["final_losses"]["ce"]
    assert a["final_losses"]["ce"] != c["final_losses"]["ce"]


@pytest.mark.slow
def test_existing_run_folder_is_not_overwritten(tiny, tmp_path):
    train(_cfg(epochs=1), tmp_path / "r", data=tiny)
    before = (tmp_path / "r" / "metrics.json").read_text()
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(_cfg(epochs=1), tmp_path / "r", data=tiny)
    assert (tmp_path / "r" / "metrics.json").read_text() == before


@pytest.mark.slow
def test_divergence_is_reported_with_advice(tiny):
    with pytest.raises(TrainingError, match=r"Lower the learning rate \(--lr\)"):
        train(_cfg(epochs=1, lr=1e6), data=tiny)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(strength=1.5), "bias-var"),
        (dict(epochs=0), "epochs"),
        (dict(method="nope"), "unknown method"),
        (dict(bias_code="hsv"), "unknown bias code"),
        (dict(settings={"nope": 1}), "nope: no such setting"),
        (dict(settings={"weight_decay": "abc"}), "weight_decay: expects a number"),
        (dict(lr_schedule="linear"), "--lr-schedule 'linear'"),
    ],
)
def test_bad_settings_are_rejected_before_work(kw, message):
    with pytest.raises(ValueError, match=message):
        _cfg(**kw).resolve()


def test_settings_are_typed_from_strings():
    assert Vanilla.Settings.resolve({"weight_decay": "0.5"}).weight_decay == 0.5


@pytest.mark.slow
def test_channels_last_trains_the_same_model(tiny):
    """NHWC is a memory layout, not a different computation: same metrics up to rounding."""
    a = train(_cfg(epochs=1), data=tiny)
    b = train(_cfg(epochs=1, channels_last=True), data=tiny)
    assert abs(a["final_losses"]["ce"] - b["final_losses"]["ce"]) < 1e-3
    assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 0.01


@pytest.mark.slow
def test_mi_balanced_preset_draws_bias_balanced_batches(tiny, monkeypatch):
    """The default mi preset makes the loop draw training samples with weights
    1 / q(y | c): bias-conflicting digits (whose colour code is most common in another
    class) are drawn several times more often than they occur in the training set."""
    from midebias.datasets import tensors as loader
    from midebias.methods import MIDebias

    drawn = []
    real = loader.draw_order

    def spy(n, shuffle, generator, weights, device):
        order = real(n, shuffle, generator, weights, device)
        if weights is not None:  # the training passes (evaluation reads the stored order)
            drawn.append(order.clone())
        return order

    monkeypatch.setattr(loader, "draw_order", spy)
    assert MIDebias.Settings().preset == "staged-gaussian"
    m = train(_cfg(method="mi", epochs=1), data=tiny)
    assert 0.0 < m["test_accuracy"]
    y = torch.from_numpy(tiny["train"].labels)
    cell = torch.from_numpy(tiny["train"].paper_code).view(-1, 3, 8).argmax(2)
    cell = (cell * torch.tensor([64, 8, 1])).sum(1)
    counts = torch.zeros(512, 10)
    counts.index_put_((cell, y), torch.ones(len(y)), accumulate=True)
    conflicting = (counts.argmax(1)[cell] != y).float()
    idx = torch.cat(drawn)
    assert len(idx) % len(y) == 0 and len(idx) > 0  # whole weighted passes
    assert conflicting.mean() > 0  # the jitter makes some colours ambiguous
    assert conflicting[idx].mean() > 3 * conflicting.mean()


@pytest.mark.slow
def test_select_reports_the_best_validation_epoch_and_keeps_its_network(tiny, tmp_path):
    from midebias.datasets.tensors import TensorSplit
    from midebias.evaluation.metrics import accuracy
    from midebias.models import make_model
    from midebias.training.run import load_checkpoint

    cfg = _cfg(epochs=4, lr=3e-2, select="val_unbiased_accuracy")
    m = train(cfg, tmp_path / "run", data=tiny)
    history = read_run(tmp_path / "run")["history"]
    values = [r["val_unbiased_accuracy"] for r in history]
    best = values.index(max(values)) + 1  # the first epoch with the highest value
    assert m["selected_epoch"] == best
    assert best < 4  # lr 3e-2 collapses after the first epoch: the restore is exercised
    assert m["val_unbiased_accuracy"] == max(values)
    assert m["test_accuracy"] == history[best - 1]["test_accuracy"]
    # The checkpoint keeps the last epoch's state (to resume) and the selected network,
    # which is the one the test accuracy was measured on.
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["epoch"] == 4 and state["best"]["epoch"] == best
    model = make_model("paper-digits", 10)
    model.load_state_dict(state["best"]["weights"])
    test = TensorSplit.from_images(tiny.splits["test"], "paper", tiny.num_colors, "cpu")
    assert accuracy(model, test) == m["test_accuracy"]


def test_select_takes_validation_metrics_only():
    with pytest.raises(ValueError, match="validation split"):
        _cfg(select="test_accuracy").resolve()


def _rates_per_step(monkeypatch, method_cls, cfg, data):
    """Train `cfg`; return, for each step, the rates of the method's optimisers and of mi's
    critic (None for other methods) as the step began."""
    seen = []
    real = method_cls.update

    def spy(self, batch):
        critic = getattr(getattr(self, "penalty", None), "critic_opt", None)
        seen.append(
            (
                [g["lr"] for o in self.scheduled_optimizers() for g in o.param_groups],
                None if critic is None else critic.param_groups[0]["lr"],
                [("initial_lr" in g) for o in self.scheduled_optimizers() for g in o.param_groups],
            )
        )
        return real(self, batch)

    monkeypatch.setattr(method_cls, "update", spy)
    train(cfg, data=data)
    return seen


@pytest.mark.slow
def test_cosine_lr_schedule_decays_the_method_rates_not_the_critics(tiny, monkeypatch):
    from midebias.methods import MIDebias
    from midebias.training.loop import lr_factor

    assert lr_factor(0, 10) == 1.0 and lr_factor(5, 10) == pytest.approx(0.5)
    assert lr_factor(9, 10) == pytest.approx(0.5 * (1 + math.cos(0.9 * math.pi)))
    seen = _rates_per_step(monkeypatch, Vanilla, _cfg(lr_schedule="cosine", lr=2e-3), tiny)
    total = len(seen)
    assert total == 2 * 8  # 2 epochs of 512 digits at batch 64
    for t, (rates, _, _) in enumerate(seen):
        assert rates == [pytest.approx(2e-3 * lr_factor(t, total))]
    # mi (step=separate: two Adams of its own): both decay, the critic's rate does not.
    cfg = _cfg(method="mi", lr_schedule="cosine", settings={"preset": "balanced-separate"})
    seen = _rates_per_step(monkeypatch, MIDebias, cfg, tiny)
    assert [len(r) for r, _, _ in seen] == [2] * total
    assert seen[-1][0] == [pytest.approx(1e-3 * lr_factor(total - 1, total))] * 2
    assert {c for _, c, _ in seen} == {1e-3}


@pytest.mark.slow
def test_constant_lr_schedule_leaves_the_rates_alone(tiny, monkeypatch):
    seen = _rates_per_step(monkeypatch, Vanilla, _cfg(), tiny)
    assert {tuple(r) for r, _, _ in seen} == {(1e-3,)}
    assert not any(any(marks) for _, _, marks in seen)  # no initial_lr written either
