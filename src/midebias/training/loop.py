"""The training loop: one function (`fit`), every method plugged in through `Method`.

`train` runs one benchmark from a TrainConfig (data, network, method, run folder, final
metrics) around `fit`; the scikit-learn estimator calls `fit` directly on its own data.
"""

from __future__ import annotations

import math
import os
import signal
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from midebias.datasets.base import bias_code_groups
from midebias.datasets.registry import BENCHMARKS, load_benchmark
from midebias.datasets.tensors import TensorSplit
from midebias.distributed import Distributed
from midebias.distributed import setup as setup_distributed
from midebias.evaluation.metrics import accuracy, embed
from midebias.methods import Method, get_method
from midebias.models import Classifier, has_batchnorm, make_model
from midebias.training.config import LR_SCHEDULES, TrainConfig
from midebias.training.run import RunDir


class TrainingError(RuntimeError):
    """Training diverged or cannot go on; the message says what to change."""


def fit(
    method: Method,
    train_split: TensorSplit,
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    method_generator: torch.Generator | None = None,
    evaluate: Callable[[int], dict[str, Any]] | None = None,
    run: RunDir | None = None,
    checkpoint_extra: dict[str, Any] | None = None,
    saved: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    min_last: int = 0,
    progress: bool = False,
    desc: str = "",
    dist: Distributed | None = None,
    best: BestEpoch | None = None,
    lr_schedule: str = "constant",
) -> tuple[list[dict[str, Any]], float]:
    """Train `method` for `epochs` passes over `train_split`; return (one record per epoch,
    training seconds). With `best`, the network ends with the weights of the evaluated
    epoch that `best` picks (the others are trained on; only the result is chosen).

    `generator` draws the data order (and, when `method_generator` is None, the method's
    own draws). `evaluate(epoch)` adds numbers to the epoch's record (or returns {}).
    With `run`, a checkpoint holding everything needed to continue (plus
    `checkpoint_extra`) is written after every epoch, then its log line. `saved` (a
    checkpoint) continues such a run: same state, same draws. `on_epoch(record)` is called
    after each epoch. A last batch under `min_last` samples joins the one before it.

    With `dist` (several processes, midebias.distributed), every process draws the same
    global batches and trains on its shard of each; the method makes each step the step of
    the global batch. Pass `evaluate` and `run` in rank 0 only (the one that writes). A last
    batch with fewer samples than processes joins the one before it.

    `lr_schedule` "cosine" sets, before each step t of the run's T, the learning rate of
    every optimiser in `method.scheduled_optimizers()` to its initial rate x (1 + cos(pi t
    / T)) / 2 (the initial rate kept in each parameter group as "initial_lr", which the
    checkpoint saves); "constant" leaves the rates alone.
    """
    method_generator = method_generator or generator
    model = method.model
    device = train_split.labels.device
    weights = method.sample_weights(train_split.codes, train_split.labels)
    shard = None
    if dist is not None:
        shard = (dist.rank, dist.world_size)
        min_last = max(min_last, dist.world_size)  # every process gets a sample
        if weights is not None:
            dist.broadcast(weights)  # one set of weights, whatever each process computed

    def epoch_batches():
        return train_split.batches(
            batch_size,
            shuffle=True,
            generator=generator,
            weights=weights,
            min_last=min_last,
            shard=shard,
        )

    steps = train_split.num_batches(batch_size, min_last)
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}"
        )
    scheduled = method.scheduled_optimizers() if lr_schedule == "cosine" else []
    for opt in scheduled:
        for group in opt.param_groups:
            group.setdefault("initial_lr", group["lr"])
    records: list[dict[str, Any]] = []
    train_seconds = 0.0
    first_epoch = 1
    if saved is not None:  # continue after the last checkpoint: same state, same draws
        method.load_state_dict(saved["method"])
        generator.set_state(saved["rng"]["data"])
        if method_generator is not generator and saved["rng"]["method"] is not None:
            method_generator.set_state(saved["rng"]["method"])
        torch.set_rng_state(saved["rng"]["torch"])
        if best is not None and saved.get("best") is not None:
            best.load_state_dict(saved["best"])
        records = list(saved["history"])
        train_seconds = float(saved["train_seconds"])
        first_epoch = int(saved["epoch"]) + 1
        if run:
            run.rewrite_log(records)  # drops any epoch logged after the checkpoint

    for epoch in range(first_epoch, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        sums: dict[str, Any] = defaultdict(float)
        for k, v in method.start_epoch(epoch_batches).items():
            sums["start_" + k] = v
        bar = tqdm(
            epoch_batches(),
            total=steps,
            desc=f"{desc} epoch {epoch}/{epochs}",
            disable=not progress,
            leave=False,
            unit="batch",
        )
        for i, batch in enumerate(bar):
            if scheduled:
                factor = lr_factor((epoch - 1) * steps + i, epochs * steps)
                for opt in scheduled:
                    for group in opt.param_groups:
                        group["lr"] = group["initial_lr"] * factor
            for k, v in method.update(batch).items():
                sums[k] = sums[k] + v  # tensors stay on the device: no sync per step
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # time the GPU's work, not only its queueing
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        losses = epoch_losses(sums, steps, epoch)
        if dist is not None:
            _check_replicas(method, dist, epoch)
        record = {"epoch": epoch, "seconds": seconds, "losses": losses}
        if evaluate is not None:
            record.update(evaluate(epoch))
        if best is not None:
            best.update(record, model)
        records.append(record)
        if run:
            # Checkpoint first, then log: a crash in between only loses a log line that
            # resuming writes again from the checkpoint's history.
            run.save_checkpoint(
                checkpoint_state(
                    method,
                    epoch,
                    generator,
                    method_generator,
                    records,
                    train_seconds,
                    checkpoint_extra,
                    best,
                )
            )
            run.log_epoch(record)
            _crash_hook(epoch)
        if on_epoch is not None:
            on_epoch(record)
    if best is not None:
        best.restore(model)
    model.eval()
    return records, train_seconds


def lr_factor(step: int, total: int) -> float:
    """The cosine schedule's factor at step `step` (from 0) of `total`: 1 at the first
    step, falling to near 0 at the last."""
    return 0.5 * (1.0 + math.cos(math.pi * step / total))


def epoch_losses(sums: dict[str, Any], steps: int, epoch: int, run: str = "") -> dict[str, float]:
    """An epoch's losses from their sums over its `steps` steps (`start_` entries, from
    `start_epoch`, are taken once); TrainingError if one is not finite (`run` names the
    run in the message, for batched runs)."""
    losses = {k: float(v) / (1 if k.startswith("start_") else steps) for k, v in sums.items()}
    bad = [k for k, v in losses.items() if not math.isfinite(v)]
    if bad:
        raise TrainingError(
            f"training{run} diverged at epoch {epoch}: {', '.join(bad)} became NaN or "
            "infinite. Lower the learning rate (--lr) or the method's lambda_ "
            "(--set lambda=) and try again."
        )
    return losses


def checkpoint_state(
    method: Method,
    epoch: int,
    generator: torch.Generator,
    method_generator: torch.Generator,
    records: list[dict[str, Any]],
    train_seconds: float,
    extra: dict[str, Any] | None = None,
    best: BestEpoch | None = None,
) -> dict[str, Any]:
    """What a run folder's checkpoint holds after `epoch`: everything `fit(saved=...)`
    needs to continue exactly (networks, optimisers, the method's counters, the draws)."""
    method_state = method.state_dict()
    return {
        **(extra or {}),
        "epoch": epoch,
        **method_state["modules"],  # top-level networks, as `audit` reads them
        "method": method_state,
        "rng": {
            "data": generator.get_state(),
            "method": None if method_generator is generator else method_generator.get_state(),
            "torch": torch.get_rng_state(),
        },
        "history": records,
        "train_seconds": train_seconds,
        "best": None if best is None else best.state_dict(),
    }


class BestEpoch:
    """The evaluated epoch with the highest value of `metric` (a validation metric; ties
    keep the earlier epoch) and a copy of the network's weights after it."""

    def __init__(self, metric: str):
        self.metric = metric
        self.epoch: int | None = None
        self.value = -math.inf
        self.weights: dict[str, torch.Tensor] | None = None

    def update(self, record: dict[str, Any], model: torch.nn.Module) -> None:
        value = record.get(self.metric)
        if value is not None and value > self.value:
            self.epoch, self.value = int(record["epoch"]), float(value)
            self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore(self, model: torch.nn.Module) -> None:
        if self.weights is not None:
            model.load_state_dict(self.weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "epoch": self.epoch,
            "value": self.value,
            "weights": self.weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.value = state["epoch"], float(state["value"])
        self.weights = state["weights"]


def _check_replicas(method: Method, dist: Distributed, epoch: int) -> None:
    """After an epoch over several processes: every process's copy of every network must
    be the same (gradients are averaged, and the critic and bias heads see the same
    gathered inputs and draws). If one is not (a non-deterministic kernel on a GPU),
    warn and continue from rank 0's copy. Buffers (running statistics) are taken from rank
    0, as torch's DistributedDataParallel does."""
    for name, module in method.modules().items():
        params = list(module.parameters())
        if params:
            if not dist.agree(torch.cat([p.detach().reshape(-1) for p in params])):
                if dist.is_main:
                    warnings.warn(
                        f"the processes' copies of {name!r} differ after epoch {epoch}; "
                        "continuing from rank 0's",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                with torch.no_grad():
                    for p in params:
                        dist.broadcast(p.data)
        for b in module.buffers():
            dist.broadcast(b.data)


# --------------------------------------------------------------------------- benchmarks


def build_data(cfg: TrainConfig):
    """The benchmark's data: BenchmarkData (images), TabularData, or FolderData (image
    files; cfg resolved)."""
    if cfg.benchmark == "imdb":
        from midebias.datasets.imdb import load_imdb

        return load_imdb(
            cfg.data_dir,
            cfg.train_split,
            val_fraction=cfg.val_fraction,
            seed=cfg.seed,
            skip_bad=cfg.skip_bad_images,
        )
    if BENCHMARKS[cfg.benchmark].kind == "folder":
        from midebias.datasets.folder import load_folder

        return load_folder(
            cfg.data_dir,
            cfg.target,
            cfg.bias_columns,
            bins=cfg.bias_bins,
            val_fraction=cfg.val_fraction,
            test_fraction=cfg.test_fraction,
            seed=cfg.seed,
            skip_bad=cfg.skip_bad_images,
        )
    if BENCHMARKS[cfg.benchmark].kind == "tabular":
        from midebias.datasets.tabular import load_tabular

        return load_tabular(
            cfg.benchmark,
            cfg.sensitive,
            seed=cfg.split_seed,
            data_dir=cfg.data_dir,
            include_sensitive=cfg.include_sensitive,
            val_fraction=cfg.val_fraction,
        )
    return load_benchmark(
        cfg.benchmark,
        strength=cfg.strength,
        seed=cfg.seed,
        train_size=cfg.train_size,
        val_fraction=cfg.val_fraction,
        source=cfg.source,
        data_dir=cfg.data_dir,
    )


class _Setup:
    """What a benchmark gives the loop: tensor splits, the bias code's groups, a network."""

    def __init__(self, cfg: TrainConfig, data, device: torch.device):
        spec = BENCHMARKS[cfg.benchmark]
        self.kind = spec.kind
        if spec.kind == "tabular":
            groups = int(max(data.s_train.max(), data.s_val.max(), data.s_test.max())) + 1
            self.splits = {
                k: TensorSplit.from_arrays(*data.split(k), groups, device)
                for k in ("train", "val", "test")
            }
            self.c_groups = [groups]
            self.num_classes = int(max(data.y_train.max(), data.y_test.max())) + 1
            self.model_kw = {
                "in_features": data.X_train.shape[1],
                "z_dim": spec.z_dim,
                "hidden": spec.hidden,
            }
            self.min_last = cfg.batch_size // 2
            self.data_info = {"sensitive": cfg.sensitive, **data.info}
        elif spec.kind == "folder":
            self._folder(cfg, data, device)
        else:
            self.splits = {
                k: TensorSplit.from_images(
                    s, cfg.bias_code, data.num_colors, device, cfg.channels_last
                )
                for k, s in data.splits.items()
            }
            self.c_groups = bias_code_groups(cfg.bias_code, data.num_colors)
            self.num_classes = data.num_classes
            self.model_kw = {"in_channels": 3}
            self.min_last = 0
            self.data_info = data.settings

    def _folder(self, cfg: TrainConfig, data, device: torch.device) -> None:
        from midebias.data.sources import DataError
        from midebias.datasets.streaming import StreamingSplit

        if cfg.image_size is not None:
            size = (cfg.image_size, cfg.image_size)
        elif data.image_size is not None:
            size = data.image_size
        else:
            raise DataError(
                f"the images of {cfg.data_dir} differ in size; pass --image-size N to resize "
                "them all to N x N"
            )
        if data.c_groups is None and get_method(cfg.method).needs_categorical_bias:
            cont = [k for k, v in data.settings["bias"].items() if v["kind"] == "continuous"]
            raise DataError(
                f"method {cfg.method!r} needs discrete bias groups, and bias column "
                f"{cont[0]!r} is continuous; pass --bias-bins N to cut it into N quantile bins"
            )
        if cfg.audit:  # the audit's probe holds out 10% of half the test split per class
            test = data.splits["test"]
            groups = len(np.unique(test.bias))
            if math.ceil(0.1 * (len(test) // 2)) < groups:
                raise DataError(
                    f"the test split has {len(test)} images, too few for the leakage audit "
                    f"of {groups} bias groups (it needs at least {2 * (10 * (groups - 1) + 1)}); "
                    "use a larger test split or --no-audit"
                )
        self.splits = {
            k: StreamingSplit(
                t,
                size,
                device,
                augment=cfg.augment and k == "train",
                workers=cfg.workers,
                channels_last=cfg.channels_last,
            )
            for k, t in data.splits.items()
        }
        self.c_groups = data.c_groups
        self.num_classes = data.num_classes
        self.model_kw = {"in_channels": 3}
        self.min_last = 0
        self.data_info = {**data.settings, "input_size": list(size)}


def train(
    config: TrainConfig,
    out: str | Path | None = None,
    *,
    data=None,
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
    config must equal `config`); on CPU the result equals that of an uninterrupted run.

    Started by torchrun as one of several processes (WORLD_SIZE > 1), the processes train
    one model together on the same global batches (midebias.distributed,
    docs/distributed.md); rank 0 alone evaluates and writes the run folder, and returns the
    final metrics; the other ranks return only the training numbers (losses, the method's
    training metrics)."""
    cfg = config.resolve()
    dist = setup_distributed(cfg.device)  # None: the only process
    try:
        return _train(cfg, out, data, overwrite, resume, history, label, dist)
    finally:
        if dist is not None:
            dist.close()


def _train(cfg, out, data, overwrite, resume, history, label, dist) -> dict[str, Any]:
    job = prepare(cfg, out, data, overwrite, resume, label, dist)
    records, train_seconds = fit(
        job.method,
        job.splits["train"],
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        generator=job.generator,
        method_generator=job.method_generator,
        evaluate=job.evaluate if job.main else None,
        run=job.run,
        checkpoint_extra={"config": cfg.to_dict()},
        saved=job.saved,
        on_epoch=history.append if history is not None else None,
        min_last=job.setup.min_last,
        progress=cfg.progress and job.main,
        desc=cfg.method,
        dist=dist,
        lr_schedule=cfg.lr_schedule,
        best=job.best,
    )
    if history is not None and job.saved is not None:
        history[:0] = records[: int(job.saved["epoch"])]
    return job.finish(records, train_seconds)


class Job:
    """One run made ready to train (`prepare`): its data, network, method, seeded
    generators and run folder; `evaluate` gives an epoch's evaluations and `finish` the
    final metrics (written to the run folder). `fit` trains it; so does
    midebias.training.batched, several jobs at once."""

    def __init__(self, cfg, data, setup, method, generator, method_generator, run, saved, dist):
        self.cfg, self.data, self.setup, self.method = cfg, data, setup, method
        self.model: Classifier = method.model
        self.splits = setup.splits
        self.generator, self.method_generator = generator, method_generator
        self.run, self.saved, self.dist = run, saved, dist
        self.main = dist is None or dist.is_main
        #: The epoch to report (rank 0, with cfg.select); None: the last.
        self.best = BestEpoch(cfg.select) if cfg.select and self.main else None

    def evaluate(self, epoch: int) -> dict[str, Any]:
        cfg, model, splits = self.cfg, self.model, self.splits
        if epoch % cfg.eval_every and epoch != cfg.epochs:
            return {}
        eval_names = [k for k in splits if k != "train"]
        if self.setup.kind != "tabular":
            return {f"{k}_accuracy": accuracy(model, splits[k]) for k in eval_names}
        from midebias.evaluation.fairness import group_metrics

        out = {f"{k}_accuracy": accuracy(model, splits[k]) for k in eval_names if k != "val"}
        val = splits["val"]  # one pass gives its accuracy and its demographic parity
        g = group_metrics(val.labels.cpu().numpy(), _predict(model, val), val.bias.cpu().numpy())
        out["val_accuracy"] = g["accuracy"]
        out["val_demographic_parity_difference"] = g["demographic_parity_difference"]
        return out

    def finish(self, records: list[dict[str, Any]], train_seconds: float) -> dict[str, Any]:
        """The final metrics (rank 0: evaluations and the audit, written to the run folder;
        other ranks: their training numbers)."""
        cfg, model, splits, method = self.cfg, self.model, self.splits, self.method
        record = records[-1]
        chosen = record
        if self.best is not None and self.best.epoch is not None:
            chosen = next(r for r in records if r["epoch"] == self.best.epoch)
        if not self.main:  # rank 0 evaluates and writes
            return {
                "rank": self.dist.rank,
                "final_losses": record["losses"],
                **method.train_metrics(),
            }
        metrics: dict[str, Any] = {
            "benchmark": cfg.benchmark,
            "method": cfg.method,
            "seed": cfg.seed,
            "epochs": cfg.epochs,
            "train_size": len(splits["train"]),
            "seconds_per_epoch": train_seconds / cfg.epochs,
            "train_accuracy": accuracy(model, splits["train"]),
            **{k: v for k, v in chosen.items() if k.endswith("_accuracy")},
            **({} if self.best is None else {"selected_epoch": self.best.epoch}),
            "final_losses": record["losses"],
            **method.train_metrics(),
        }
        if self.setup.kind == "tabular":
            metrics.update(_tabular_metrics(cfg, model, self.data, splits))
        else:
            if self.setup.kind == "image":
                metrics[BENCHMARKS[cfg.benchmark].bias_setting] = cfg.strength
            if cfg.audit:
                from midebias.evaluation.leakage import leakage_audit

                metrics.update(leakage_audit(model, splits, seed=cfg.seed))
        if self.run:
            self.run.write_json("metrics.json", metrics)
            self.run.finish()
        return metrics


def prepare(cfg, out, data, overwrite, resume, label, dist) -> Job:
    """Everything before the first epoch of `train` (cfg resolved): check the run folder,
    build the data (unless given), the network and the method from the seed, and create
    the run folder with its config.json (rank 0)."""
    main = dist is None or dist.is_main
    saved: dict[str, Any] | None = None
    if resume:
        if out is None:
            raise ValueError("resume needs the run folder (out)")
        saved = RunDir.resume_state(out, cfg)  # RunError if it cannot be continued
    elif out is not None:
        RunDir.check_free(out, overwrite)  # fail before the data work, not after
    if dist is not None:
        dist.barrier()  # every process has read the folder before rank 0 changes it
    if data is None:
        data = build_data(cfg)
    device = dist.device if dist is not None else torch.device(cfg.device)
    setup = _Setup(cfg, data, device)
    if cfg.select is not None and cfg.select.removesuffix("_accuracy") not in setup.splits:
        vals = [f"{k}_accuracy" for k in setup.splits if k.startswith("val")]
        raise ValueError(
            f"--select {cfg.select}: {cfg.benchmark} has no such split; its validation "
            f"metrics: {', '.join(vals)}"
        )
    run = None
    if out is not None and main and resume:
        run = RunDir.reopen(out)
    elif out is not None and main:
        run = RunDir(out, overwrite=overwrite)
        extra = {} if dist is None else {"processes": dist.world_size}
        run.write_json(
            "config.json",
            {**cfg.to_dict(), "label": label or cfg.method, "data": setup.data_info, **extra},
        )

    try:  # set up; a failure here leaves any earlier run in `out` as it was
        splits = setup.splits
        gen = torch.Generator().manual_seed(cfg.seed)  # data order (and, on CPU, methods' draws)
        # On a GPU the methods draw their shuffles there: no host-to-device copy (sync) per draw.
        method_gen = gen
        if device.type != "cpu":
            method_gen = torch.Generator(device=device).manual_seed(cfg.seed)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(cfg.seed)
            model_kw = dict(setup.model_kw)
            if cfg.init_checkpoint is not None:  # resnet* (checked by resolve)
                model_kw["checkpoint"] = cfg.init_checkpoint
            model = make_model(cfg.model, setup.num_classes, **model_kw)
            if dist is not None and device.type == "cuda":
                # BatchNorm over the global batch (on CPU each process normalises its shard)
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif dist is not None and main and has_batchnorm(model):
                warnings.warn(
                    f"--model {cfg.model} has BatchNorm layers, which on the CPU (gloo) "
                    "normalise each process's part of the batch: the run differs from a "
                    "single-process one (on GPUs they are synchronised)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            model = model.to(device)
            if cfg.channels_last:
                model.to(memory_format=torch.channels_last)
            method = get_method(cfg.method)(
                model,
                lr=cfg.lr,
                c_dim=splits["train"].c_dim,
                c_groups=setup.c_groups,
                settings=cfg.settings,
                generator=method_gen,
                dist=dist,
            )
    except BaseException:
        if run:
            run.abandon()
        raise
    if run:
        run.commit()
    return Job(cfg, data, setup, method, gen, method_gen, run, saved, dist)


@torch.inference_mode()
def _predict(model: Classifier, split: TensorSplit) -> np.ndarray:
    model.eval()
    return torch.cat([model(b.x).argmax(1).cpu() for b in split.batches(4096)]).numpy()


class _Fitted:
    """A trained network behind predict/transform on feature arrays (for fairness_report)."""

    def __init__(self, model: Classifier, device: torch.device):
        self.model, self.device = model, device

    def _split(self, X) -> TensorSplit:
        n = len(X)
        zeros = np.zeros(n, dtype=np.int64)
        return TensorSplit.from_arrays(X, zeros, zeros, 1, self.device)

    def predict(self, X) -> np.ndarray:
        return _predict(self.model, self._split(X))

    def transform(self, X) -> np.ndarray:
        return embed(self.model, self._split(X), batch_size=4096).numpy()


def _tabular_metrics(cfg: TrainConfig, model: Classifier, data, splits) -> dict[str, Any]:
    """Fairness report of the test split (plain names and test_ prefix) and the val split
    (val_ prefix): accuracy, demographic parity and equalised odds differences, and (with
    audit) the probe accuracy and post-hoc MI of s from z."""
    from midebias.evaluation.fairness import fairness_report

    fitted = _Fitted(model, splits["train"].labels.device)
    val = fairness_report(fitted, data, "val", seed=cfg.seed, probe=False, mi=False)
    test = fairness_report(fitted, data, "test", seed=cfg.seed, probe=cfg.audit, mi=cfg.audit)
    return {
        "sensitive": cfg.sensitive,
        **test,
        **{f"val_{k}": v for k, v in val.items()},
        **{f"test_{k}": v for k, v in test.items()},
    }


def _crash_hook(epoch: int) -> None:
    """For the resume tests: MIDEBIAS_TEST_KILL_AFTER_EPOCH=N sends this process SIGKILL
    right after epoch N's checkpoint and log line are written (a crash at a known point)."""
    at = os.environ.get("MIDEBIAS_TEST_KILL_AFTER_EPOCH")
    if at is not None and int(at) == epoch:
        os.kill(os.getpid(), signal.SIGKILL)
