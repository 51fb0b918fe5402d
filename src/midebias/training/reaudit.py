"""Re-run the leakage audit of a finished image run from its folder (config + checkpoint);
image-folder runs read their files again. `audit_split` audits another split of a generated
benchmark (e.g. val_unbiased, to choose settings on held-out training digits, not on test)."""

from __future__ import annotations

import json
from pathlib import Path

from midebias.datasets.registry import BENCHMARKS, FOLDER_BENCHMARKS, load_benchmark
from midebias.datasets.tensors import TensorSplit
from midebias.evaluation.leakage import leakage_audit
from midebias.models import make_model
from midebias.training.run import load_checkpoint


def reaudit_run(path: str | Path) -> dict[str, float]:
    """Rebuild the run's data and encoder, audit z again, and update its metrics.json."""
    path = Path(path)
    cfg = json.loads((path / "config.json").read_text())
    metrics = json.loads((path / "metrics.json").read_text())
    if cfg["benchmark"] in FOLDER_BENCHMARKS:
        split, num_classes = _folder_test_split(cfg)
    else:
        split, num_classes = _generated_split(cfg, "test")
    audit = leakage_audit(_encoder(path, cfg, num_classes), {"test": split}, seed=cfg["seed"])
    metrics.update(audit)
    (path / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return audit


def audit_split(path: str | Path, split: str = "val_unbiased") -> dict[str, float]:
    """The leakage audit (bias probe, post-hoc MI) of the run's z on `split` of its generated
    benchmark, e.g. val_unbiased (held-out training digits coloured independently of their
    label); the run folder is not changed."""
    path = Path(path)
    cfg = json.loads((path / "config.json").read_text())
    if BENCHMARKS[cfg["benchmark"]].kind != "image":
        raise ValueError(f"audit_split audits generated image benchmarks, not {cfg['benchmark']!r}")
    held, num_classes = _generated_split(cfg, split)
    model = _encoder(path, cfg, num_classes)
    return leakage_audit(model, {split: held}, seed=cfg["seed"], split=split)


def _encoder(path: Path, cfg: dict, num_classes: int):
    """The run's network with the reported epoch's weights (the last, or --select's)."""
    state = load_checkpoint(path / "checkpoint.pt")  # weights_only: no code runs
    model = make_model(cfg["model"], in_channels=3, num_classes=num_classes)
    weights = state["model"] if "model" in state else state["method"]["modules"]["model"]
    if (state.get("best") or {}).get("weights") is not None:  # --select: the reported epoch's
        weights = state["best"]["weights"]
    model.load_state_dict(weights)
    return model


def _folder_test_split(cfg: dict):
    """The test split of an image-folder run (its files read again) and its class count."""
    from dataclasses import fields

    from midebias.datasets.streaming import StreamingSplit
    from midebias.training.config import TrainConfig
    from midebias.training.loop import build_data

    config = TrainConfig(**{f.name: cfg[f.name] for f in fields(TrainConfig) if f.name in cfg})
    data = build_data(config)
    size = tuple(cfg["data"]["input_size"])
    return StreamingSplit(data["test"], size, workers=config.workers), data.num_classes


def _generated_split(cfg: dict, name: str):
    """Split `name` of a generated image benchmark and its class count."""
    data = load_benchmark(
        cfg["benchmark"],
        strength=cfg["strength"],
        seed=cfg["seed"],
        train_size=cfg["train_size"],
        val_fraction=cfg["val_fraction"],
        source=cfg["source"],
        data_dir=cfg["data_dir"],
    )
    if name not in data.splits:
        have = ", ".join(data.splits)
        raise ValueError(f"{cfg['benchmark']} has no split {name!r}; it has {have}")
    split = TensorSplit.from_images(data[name], cfg["bias_code"], data.num_colors)
    return split, data.num_classes
