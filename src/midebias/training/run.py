"""A run is a folder: config.json, metrics.jsonl (one line per epoch), metrics.json, checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become null so files stay valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


class RunError(Exception):
    """A run folder cannot be used as asked (incomplete, not a run, unsafe checkpoint)."""


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint with ``weights_only=True``: tensors, numbers, strings and plain
    containers only. A pickle that would build any other object (and so could run code)
    is refused before anything in it runs."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunError(f"{path} does not exist") from None
    except Exception as e:  # pickle.UnpicklingError, RuntimeError for bad archives, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(
            f"{path} is not a safe midebias checkpoint (refused to load it: {first[:200]})"
        ) from None
    if not isinstance(state, dict):
        raise RunError(f"{path} is not a midebias checkpoint (expected a dict)")
    return state


class RunDir:
    """Writes one run's files. Refuses to mix two runs in one folder."""

    def __init__(self, path: str | Path, overwrite: bool = False):
        self.path = Path(path)
        self.check_free(self.path, overwrite)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "metrics.jsonl").write_text("")

    @staticmethod
    def check_free(path: str | Path, overwrite: bool = False) -> None:
        """Raise FileExistsError if `path` already holds a run and overwrite is off."""
        path = Path(path)
        if (path / "metrics.jsonl").exists() and not overwrite:
            raise FileExistsError(
                f"{path} already holds a run (metrics.jsonl); choose another --out "
                "or pass --overwrite"
            )
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder; choose another --out")

    def write_json(self, name: str, data: dict) -> None:
        (self.path / name).write_text(json.dumps(_clean(data), indent=2, sort_keys=True) + "\n")

    def log_epoch(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(_clean(record), sort_keys=True) + "\n")

    def save_checkpoint(self, state: dict) -> None:
        torch.save(state, self.path / "checkpoint.pt")


def read_run(path: str | Path) -> dict:
    """config, per-epoch history and final metrics of a run folder."""
    path = Path(path)
    history = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    return {
        "config": json.loads((path / "config.json").read_text()),
        "history": history,
        "metrics": json.loads((path / "metrics.json").read_text()),
    }
