"""Re-run the leakage audit of a finished image run from its folder (config + checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

from midebias.datasets.registry import load_benchmark
from midebias.datasets.tensors import TensorSplit
from midebias.evaluation.leakage import leakage_audit
from midebias.models import make_model
from midebias.training.run import load_checkpoint


def reaudit_run(path: str | Path) -> dict[str, float]:
    """Rebuild the run's data and encoder, audit z again, and update its metrics.json."""
    path = Path(path)
    cfg = json.loads((path / "config.json").read_text())
    metrics = json.loads((path / "metrics.json").read_text())
    state = load_checkpoint(path / "checkpoint.pt")  # weights_only: no code runs
    data = load_benchmark(
        cfg["benchmark"],
        strength=cfg["strength"],
        seed=cfg["seed"],
        train_size=cfg["train_size"],
        val_fraction=cfg["val_fraction"],
        source=cfg["source"],
        data_dir=cfg["data_dir"],
    )
    model = make_model(cfg["model"], in_channels=3, num_classes=data.num_classes)
    model.load_state_dict(
        state["model"] if "model" in state else state["method"]["modules"]["model"]
    )
    split = TensorSplit.from_images(data["test"], cfg["bias_code"], data.num_colors)
    audit = leakage_audit(model, {"test": split}, seed=cfg["seed"])
    metrics.update(audit)
    (path / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return audit
