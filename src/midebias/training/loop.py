"""The training loop: one function, every method plugged in through `Method`."""

from __future__ import annotations

import math
import os
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from midebias.datasets.base import BenchmarkData, bias_code_groups
from midebias.datasets.registry import IMAGE_BENCHMARKS, load_benchmark
from midebias.datasets.tensors import TensorSplit
from midebias.evaluation.metrics import accuracy
from midebias.methods import get_method
from midebias.models import make_model
from midebias.training.config import TrainConfig
from midebias.training.run import RunDir


class TrainingError(RuntimeError):
    """Training diverged or cannot go on; the message says what to change."""


def build_data(cfg: TrainConfig) -> BenchmarkData:
    return load_benchmark(
        cfg.benchmark,
        strength=cfg.strength,
        seed=cfg.seed,
        train_size=cfg.train_size,
        val_fraction=cfg.val_fraction,
        source=cfg.source,
        data_dir=cfg.data_dir,
    )


def train(
    config: TrainConfig,
    out: str | Path | None = None,
    *,
    data: BenchmarkData | None = None,
    overwrite: bool = False,
    resume: bool = False,
    history: list[dict] | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Train `config.method` on `config.benchmark`; return final metrics (and write a run
    folder at `out` if given, with a checkpoint after every epoch). `data` may be passed to
    reuse generated splits; each epoch's record is also appended to `history` if given;
    `label` names the run in config.json (e.g. 'mi:fast', for tables built from run
    folders). `resume` continues the unfinished run in `out` from its last checkpoint (its
    config must equal `config`); on CPU the result equals that of an uninterrupted run."""
    cfg = config.resolve()
    saved: dict[str, Any] | None = None
    if resume:
        if out is None:
            raise ValueError("resume needs the run folder (out)")
        saved = RunDir.resume_state(out, cfg)  # RunError if it cannot be continued
    elif out is not None:
        RunDir.check_free(out, overwrite)  # fail before the data work, not after
    if data is None:
        data = build_data(cfg)
    run = None
    if out is not None and resume:
        run = RunDir.reopen(out)
    elif out is not None:
        run = RunDir(out, overwrite=overwrite)
        run.write_json(
            "config.json", {**cfg.to_dict(), "label": label or cfg.method, "data": data.settings}
        )

    try:  # set up; a failure here leaves any earlier run in `out` as it was
        device = torch.device(cfg.device)
        splits = {
            k: TensorSplit(s, cfg.bias_code, data.num_colors, device, cfg.channels_last)
            for k, s in data.splits.items()
        }
        train_split = splits["train"]
        gen = torch.Generator().manual_seed(cfg.seed)  # data order (and, on CPU, methods' draws)
        # On a GPU the methods draw their shuffles there: no host-to-device copy (sync) per draw.
        method_gen = gen
        if device.type != "cpu":
            method_gen = torch.Generator(device=device).manual_seed(cfg.seed)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(cfg.seed)
            model = make_model(cfg.model, in_channels=3, num_classes=data.num_classes).to(device)
            if cfg.channels_last:
                model.to(memory_format=torch.channels_last)
            method = get_method(cfg.method)(
                model,
                lr=cfg.lr,
                c_dim=train_split.c_dim,
                c_groups=bias_code_groups(cfg.bias_code, data.num_colors),
                settings=cfg.settings,
                generator=method_gen,
            )
    except BaseException:
        if run:
            run.abandon()
        raise
    if run:
        run.commit()

    weights = method.sample_weights(train_split.codes, train_split.labels)

    def epoch_batches():
        return train_split.batches(cfg.batch_size, shuffle=True, generator=gen, weights=weights)

    steps = math.ceil(len(train_split) / cfg.batch_size)
    eval_names = [k for k in splits if k != "train"]
    train_seconds = 0.0
    record: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    first_epoch = 1
    if saved is not None:  # continue after the last checkpoint: same state, same draws
        method.load_state_dict(saved["method"])
        gen.set_state(saved["rng"]["data"])
        if method_gen is not gen and saved["rng"]["method"] is not None:
            method_gen.set_state(saved["rng"]["method"])
        torch.set_rng_state(saved["rng"]["torch"])
        records = list(saved["history"])
        record = records[-1]
        train_seconds = float(saved["train_seconds"])
        first_epoch = int(saved["epoch"]) + 1
        run.rewrite_log(records)  # drops any epoch logged after the checkpoint
        if history is not None:
            history.extend(records)

    for epoch in range(first_epoch, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        sums: dict[str, Any] = defaultdict(float)
        for k, v in method.start_epoch(epoch_batches).items():
            sums["start_" + k] = v
        bar = tqdm(
            epoch_batches(),
            total=steps,
            desc=f"{cfg.method} epoch {epoch}/{cfg.epochs}",
            disable=not cfg.progress,
            leave=False,
            unit="batch",
        )
        for batch in bar:
            for k, v in method.update(batch).items():
                sums[k] = sums[k] + v  # tensors stay on the device: no sync per step
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # time the GPU's work, not only its queueing
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        losses = {k: float(v) / (1 if k.startswith("start_") else steps) for k, v in sums.items()}
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise TrainingError(
                f"training diverged at epoch {epoch}: {', '.join(bad)} became NaN or infinite. "
                "Lower --lr (or the method's lambda) and try again."
            )
        record = {"epoch": epoch, "seconds": seconds, "losses": losses}
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            record.update({f"{k}_accuracy": accuracy(model, splits[k]) for k in eval_names})
        records.append(record)
        if run:
            # Checkpoint first, then log: a crash in between only loses a log line that
            # resuming writes again from the checkpoint's history.
            method_state = method.state_dict()
            run.save_checkpoint(
                {
                    "config": cfg.to_dict(),
                    "epoch": epoch,
                    **method_state["modules"],  # top-level networks, as `audit` reads them
                    "method": method_state,
                    "rng": {
                        "data": gen.get_state(),
                        "method": None if method_gen is gen else method_gen.get_state(),
                        "torch": torch.get_rng_state(),
                    },
                    "history": records,
                    "train_seconds": train_seconds,
                }
            )
            run.log_epoch(record)
            _crash_hook(epoch)
        if history is not None:
            history.append(record)

    metrics: dict[str, Any] = {
        "benchmark": cfg.benchmark,
        "method": cfg.method,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        IMAGE_BENCHMARKS[cfg.benchmark].bias_setting: cfg.strength,
        "train_size": len(train_split),
        "seconds_per_epoch": train_seconds / cfg.epochs,
        "train_accuracy": accuracy(model, train_split),
        **{k: v for k, v in record.items() if k.endswith("_accuracy")},
        "final_losses": record["losses"],
        **method.train_metrics(),
    }
    if cfg.audit:
        from midebias.evaluation.leakage import leakage_audit

        metrics.update(leakage_audit(model, splits, seed=cfg.seed))
    if run:
        run.write_json("metrics.json", metrics)
        run.finish()
    return metrics


def _crash_hook(epoch: int) -> None:
    """For the resume tests: MIDEBIAS_TEST_KILL_AFTER_EPOCH=N sends this process SIGKILL
    right after epoch N's checkpoint and log line are written (a crash at a known point)."""
    at = os.environ.get("MIDEBIAS_TEST_KILL_AFTER_EPOCH")
    if at is not None and int(at) == epoch:
        os.kill(os.getpid(), signal.SIGKILL)
