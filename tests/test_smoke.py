"""Every method, with each of its presets, through the training loop on every benchmark.

The cases are read from the registries (METHODS, each method's Settings.PRESETS, the
benchmark table: generated images and tabular), so a
new method, preset or benchmark is smoke-tested without touching this file. Each run is tiny
(64 demo digits, 2 epochs of 2 steps, 64 digits per held-out split) and checks what the
loop must deliver for any method: finite losses with the method's own names, every split's
accuracy, the benchmark's own bias setting (images) or fairness report (tabular), and every
network the method owns moved away from its initial weights. The tabular benchmarks need
the UCI files (MIDEBIAS_DATA_DIR) and are skipped without them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os

import pytest
import torch

from midebias.datasets.base import BIAS_CODES, Split, bias_code_groups
from midebias.datasets.registry import BENCHMARKS as REGISTRY
from midebias.datasets.registry import IMAGE_BENCHMARKS
from midebias.methods import METHODS
from midebias.training import TrainConfig, train
from midebias.training import loop as loop_module

#: The benchmarks every method runs on: every one `midebias train` knows, except those that
#: read image files (folder, imdb): tests/test_folder.py trains every method on fixtures of
#: their layouts.
BENCHMARKS = [b for b in REGISTRY if REGISTRY[b].kind != "folder"]

#: The mean losses each method reports per epoch (metrics["final_losses"]).
LOSSES = {
    "vanilla": {"ce"},
    "mi": {"ce", "mi"},
    "blindeye": {"ce", "bias_ce", "confusion"},
    "lnl": {"ce", "bias_ce", "neg_entropy"},
}

#: Numbers a method adds to metrics.json beyond the loop's own (Method.train_metrics).
TRAIN_METRICS = {"vanilla": set(), "mi": {"mi_train"}, "blindeye": set(), "lnl": set()}

EPOCHS = 2
TRAIN_SIZE = 64
BATCH_SIZE = 32
HELD_OUT = 64  # digits kept per held-out split (evaluation dominates the cost otherwise)

#: Settings that make a preset cheap without leaving its code path: the paper preset's 40
#: critic updates (each re-encoding a pooled batch) per step become 2.
CHEAPER = {("mi", "paper"): {"critic_steps": 2}}


def _presets(method: str) -> list[str | None]:
    """The method's presets, or [None] (its defaults) if it has none."""
    return list(METHODS[method].Settings.PRESETS) or [None]


def _tabular(bench: str) -> bool:
    return REGISTRY[bench].kind == "tabular"


_NO_UCI = pytest.mark.skipif(
    not os.environ.get("MIDEBIAS_DATA_DIR"), reason="set MIDEBIAS_DATA_DIR to the UCI files"
)

CASES = [
    pytest.param(
        bench,
        method,
        preset,
        id=f"{bench}-{method}" + (f"-{preset}" if preset else ""),
        marks=[_NO_UCI] if _tabular(bench) else [],
    )
    for bench in BENCHMARKS
    for method in METHODS
    for preset in _presets(method)
]


def _needs_categorical(method: str) -> bool:
    return bool(getattr(METHODS[method], "needs_categorical_bias", False))


def _is_continuous(code: str) -> bool:
    return bias_code_groups(code) is None


def _cfg(bench: str, method: str, preset: str | None = None, **kw) -> TrainConfig:
    if not _tabular(bench):
        kw = {"train_size": TRAIN_SIZE, "source": "demo", **kw}
    return TrainConfig(
        benchmark=bench,
        method=method,
        settings={} if preset is None else {"preset": preset, **CHEAPER.get((method, preset), {})},
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        audit=False,
        progress=False,
        **kw,
    )


@functools.cache
def _data(bench: str):
    """The benchmark's splits at its default strength, built once per benchmark, with each
    held-out split cut to its first HELD_OUT digits (tabular: the training split to its
    first TRAIN_SIZE rows too)."""
    data = loop_module.build_data(_cfg(bench, "vanilla").resolve())
    if _tabular(bench):
        size = {"train": TRAIN_SIZE, "val": HELD_OUT, "test": HELD_OUT}
        return dataclasses.replace(
            data,
            **{f"{a}_{k}": getattr(data, f"{a}_{k}")[:n] for k, n in size.items() for a in "Xys"},
        )
    cut = {
        k: s
        if k == "train"
        else Split(*(a[:HELD_OUT] for a in (s.images, s.labels, s.bias, s.colors)))
        for k, s in data.splits.items()
    }
    return dataclasses.replace(data, splits=cut)


@pytest.fixture
def made(monkeypatch):
    """The method objects the loop builds, each with a copy of its networks' initial state."""
    made: list[tuple[object, dict]] = []
    real = loop_module.get_method

    def spy(name):
        cls = real(name)

        class Recorded(cls):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                initial = {k: copy.deepcopy(m.state_dict()) for k, m in self.modules().items()}
                made.append((self, initial))

        return Recorded

    monkeypatch.setattr(loop_module, "get_method", spy)
    return made


def _moved(module: torch.nn.Module, initial: dict) -> bool:
    now = module.state_dict()
    return any(v.is_floating_point() and not torch.equal(v, initial[k]) for k, v in now.items())


def _check_run(cfg: TrainConfig, metrics: dict, history: list[dict], made) -> None:
    bench, method = cfg.benchmark, cfg.method
    data = _data(bench)
    sizes = (
        {k: len(data.split(k)[1]) for k in ("train", "val", "test")}
        if _tabular(bench)
        else {k: len(s) for k, s in data.splits.items()}
    )
    # One record per epoch, each with finite mean losses under the method's own names.
    assert [r["epoch"] for r in history] == list(range(1, EPOCHS + 1))
    for record in history:
        assert set(record["losses"]) == LOSSES[method]
        assert all(math.isfinite(v) for v in record["losses"].values()), record["losses"]
    assert metrics["final_losses"] == history[-1]["losses"]
    # The accuracy of every split (train and the held-out ones), as a fraction of its size.
    for split, n in sizes.items():
        acc = metrics[f"{split}_accuracy"]
        assert round(acc * n) == pytest.approx(acc * n, abs=1e-6)  # a count of right answers
    assert metrics["train_size"] == TRAIN_SIZE and metrics["epochs"] == EPOCHS
    image_settings = {s.bias_setting for s in IMAGE_BENCHMARKS.values()}
    if _tabular(bench):
        # The fairness report of the test split, and no image bias setting.
        assert metrics["sensitive"] == REGISTRY[bench].sensitive
        for key in ("demographic_parity_difference", "equalized_odds_difference"):
            assert 0 <= metrics[key] <= 1 and metrics[f"test_{key}"] == metrics[key]
        assert not image_settings & set(metrics)
    else:
        # The benchmark's own bias setting (sigma^2 or rho), and not the other benchmarks'.
        spec = IMAGE_BENCHMARKS[bench]
        assert metrics[spec.bias_setting] == spec.default_strength
        assert not (image_settings - {spec.bias_setting}) & set(metrics)
    # Method-specific numbers.
    assert TRAIN_METRICS[method] <= set(metrics)
    for key in TRAIN_METRICS[method]:
        assert math.isfinite(metrics[key])
    # Exactly one method object, and every network it trains left its initial weights.
    assert len(made) == 1
    obj, initial = made[0]
    assert set(initial) == set(obj.modules())
    for name, module in obj.modules().items():
        assert _moved(module, initial[name]), f"{name} did not change"
    for part in ("encoder", "head"):  # both halves of the classifier learn
        before = {k.removeprefix(part + "."): v for k, v in initial["model"].items()}
        assert _moved(getattr(obj.model, part), before), f"the model's {part} did not change"
    if method == "mi":
        # start_epoch ran once per epoch (it counts the epochs it started).
        assert obj.epochs_started == EPOCHS and obj.epoch == EPOCHS - 1
        assert obj.mi_count == math.ceil(TRAIN_SIZE / BATCH_SIZE)  # steps of the last epoch


@pytest.mark.slow
@pytest.mark.parametrize(("bench", "method", "preset"), CASES)
def test_every_method_and_preset_trains_on_every_benchmark(bench, method, preset, made):
    cfg = _cfg(bench, method, preset)
    history: list[dict] = []
    metrics = train(cfg, data=_data(bench), history=history)
    assert metrics["benchmark"] == bench and metrics["method"] == method
    _check_run(cfg, metrics, history, made)


CODE_CASES = [
    pytest.param(method, code, id=f"{method}-{code}")
    for method in METHODS
    for code in BIAS_CODES
    if code != IMAGE_BENCHMARKS[BENCHMARKS[0]].bias_code  # the default is run above
]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "code"), CODE_CASES)
def test_every_method_with_every_bias_code(method, code, made, tmp_path):
    """A method that classifies the bias attribute must refuse a continuous code, before
    any work; every other pairing trains."""
    bench = BENCHMARKS[0]
    cfg = _cfg(bench, method, bias_code=code)
    if _needs_categorical(method) and _is_continuous(code):
        with pytest.raises(ValueError, match="categorical bias code"):
            train(cfg, tmp_path / "run", data=_data(bench))
        assert not (tmp_path / "run").exists()
        assert made == []
        return
    history: list[dict] = []
    metrics = train(cfg, data=_data(bench), history=history)
    _check_run(cfg, metrics, history, made)


def test_every_method_has_its_losses_listed_here():
    """A new method fails here first, with the fix: name its losses in LOSSES and its extra
    metrics in TRAIN_METRICS (the smoke runs check them)."""
    assert set(LOSSES) == set(METHODS), "list each method's loss names in LOSSES"
    assert set(TRAIN_METRICS) == set(METHODS), "list each method's train_metrics keys"
