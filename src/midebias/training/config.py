"""The resolved settings of one training run."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any


def check_device(name: str) -> str:
    """`name` if torch can run on that device here; ValueError naming --device if not."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r} is not a device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name}: unsupported device type {device.type!r}")
    return name


#: Metrics `select` may pick the epoch by (validation splits only).
SELECTABLE = ("val_accuracy", "val_unbiased_accuracy")
#: How the learning rate of the method's optimisers moves over the run (`lr_factor`).
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    """Every setting of a run. None means 'the benchmark's default' until `resolve`."""

    benchmark: str = "colored-mnist"
    strength: float | None = None  # sigma^2 (colored-mnist) or rho (biased-mnist)
    method: str = "vanilla"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    train_size: int | None = None  # images only
    val_fraction: float = 0.1
    model: str | None = None
    bias_code: str | None = None  # images: paper | index | rgb
    #: The method's settings: a mapping of the values to change (before `resolve`), then
    #: the method's Settings instance with every value (after).
    settings: Any = field(default_factory=dict)
    source: str = "mnist"  # images: mnist | demo (embedded subset)
    sensitive: str | None = None  # tabular: the attribute s (default: the benchmark's)
    include_sensitive: bool = False  # tabular: keep s's column(s) among the features
    split_seed: int = 0  # tabular: seed of the data split
    data_dir: str | None = None
    device: str = "cpu"
    audit: bool = True
    progress: bool = True
    eval_every: int = 1  # evaluate every N epochs (and always after the last)
    #: Keep the network of the evaluated epoch with the best value of this validation
    #: metric (val_accuracy or val_unbiased_accuracy); None: the last epoch's.
    select: str | None = None
    #: constant: lr throughout; cosine: lr x (1 + cos(pi t / T)) / 2 at step t of T, for
    #: every optimiser of the method except mi's critic (`Method.scheduled_optimizers`).
    lr_schedule: str = "constant"
    channels_last: bool = False  # NHWC memory format for the network and its inputs
    # Image files (folder, imdb; docs/images.md):
    target: str | None = None  # folder: the CSV's target column
    bias_columns: list[str] | None = None  # folder: the CSV's bias column(s)
    bias_bins: int | None = None  # folder: quantile bins of continuous bias columns
    train_split: str | None = None  # imdb: eb1 | eb2 (default eb1)
    test_fraction: float = 0.2  # folder without a split column: the test share
    image_size: int | None = None  # square side the images are resized to (None: the spec's)
    augment: bool = True  # random crop + flip on the train split
    workers: int = 2  # DataLoader processes decoding images
    init_checkpoint: str | None = None  # resnet*: a file of trunk weights to start from
    skip_bad_images: bool = False  # leave out missing/corrupt images (counted) instead of failing

    def resolve(self) -> TrainConfig:
        """Fill benchmark defaults and check every value; raises ValueError with the reason
        (a midebias.methods.settings.SettingError for the method's settings)."""
        from midebias.datasets.registry import BENCHMARKS
        from midebias.methods import get_method
        from midebias.models import MODELS

        if self.benchmark not in BENCHMARKS:
            known = ", ".join(BENCHMARKS)
            raise ValueError(f"unknown benchmark {self.benchmark!r}; choose one of {known}")
        spec = BENCHMARKS[self.benchmark]
        c = dataclasses.replace(self)
        c.epochs = spec.epochs if c.epochs is None else c.epochs
        c.batch_size = spec.batch_size if c.batch_size is None else c.batch_size
        c.lr = spec.lr if c.lr is None else c.lr
        c.model = spec.model if c.model is None else c.model
        if spec.kind == "image":
            c._resolve_image(spec)
        elif spec.kind == "folder":
            c._resolve_folder(spec)
        else:
            c._resolve_tabular(spec)
        if spec.kind != "folder":
            c._refuse_folder_flags()
        if c.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {c.epochs}")
        if c.batch_size < 2:
            raise ValueError(f"--batch-size must be at least 2, got {c.batch_size}")
        if not (c.lr > 0 and math.isfinite(c.lr)):
            raise ValueError(f"--lr must be a positive finite number, got {c.lr}")
        if c.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {c.seed}")
        if c.eval_every < 1:
            raise ValueError(f"--eval-every must be at least 1, got {c.eval_every}")
        if c.select is not None and c.select not in SELECTABLE:
            raise ValueError(
                f"--select {c.select}: choose one of {', '.join(SELECTABLE)} (a validation "
                "split; selecting on a test split would report a chosen, not a measured, number)"
            )
        if c.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"--lr-schedule {c.lr_schedule!r}: choose one of {', '.join(LR_SCHEDULES)}"
            )
        if not 0 < c.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in (0, 1), got {c.val_fraction}")
        if c.model not in MODELS:
            raise ValueError(f"unknown model {c.model!r}; choose one of {', '.join(MODELS)}")
        c.device = check_device(c.device)
        c._check_processes()
        method = get_method(c.method)
        if c.init_checkpoint is not None and not c.model.startswith("resnet"):
            raise ValueError(f"--init-checkpoint applies to the resnet models, not {c.model}")
        if method.needs_categorical_bias and c.bias_code == "rgb":
            raise ValueError(
                f"--bias-code rgb is continuous; method {c.method!r} needs a categorical "
                "bias code (paper or index)"
            )
        if isinstance(c.settings, dict) and "preset" not in c.settings:
            preset = dict(spec.presets).get(c.method)
            if preset is not None:  # the benchmark's default preset for this method
                c.settings = {"preset": preset, **c.settings}
        c.settings = method.Settings.resolve(c.settings)  # SettingError (a ValueError) if bad
        return c

    def _check_processes(self) -> None:
        """Under torchrun (WORLD_SIZE > 1): what several processes need (docs/distributed.md)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world < 2:
            return
        import torch

        device = torch.device(self.device)
        if device.type not in ("cpu", "cuda"):
            raise ValueError(
                f"--device {self.device}: several processes need cpu (gloo) or cuda (NCCL)"
            )
        if device.type == "cuda" and device.index is not None:
            raise ValueError(
                f"--device {self.device}: with several processes each one uses the GPU "
                "numbered LOCAL_RANK; pass --device cuda"
            )
        if self.batch_size < world:
            raise ValueError(
                f"--batch-size {self.batch_size} is smaller than the number of processes "
                f"({world}): each process needs a part of every batch"
            )

    def _resolve_image(self, spec) -> None:
        from midebias.datasets.base import BIAS_CODES

        self.strength = spec.default_strength if self.strength is None else float(self.strength)
        self.bias_code = spec.bias_code if self.bias_code is None else self.bias_code
        if spec.bias_setting == "bias_var" and not 0 < self.strength <= 1:
            raise ValueError(f"--bias-var must be in (0, 1], got {self.strength}")
        if spec.bias_setting == "rho" and not 0 <= self.strength <= 1:
            raise ValueError(f"--rho must be in [0, 1], got {self.strength}")
        if self.train_size is not None and self.train_size < 1:
            raise ValueError(f"--train-size must be positive, got {self.train_size}")
        if self.model == "mlp":
            raise ValueError(f"--model mlp is for feature vectors, not {self.benchmark}")
        if self.bias_code not in BIAS_CODES:
            raise ValueError(
                f"unknown bias code {self.bias_code!r}; choose one of {', '.join(BIAS_CODES)}"
            )
        if self.source not in ("mnist", "demo"):
            raise ValueError(f"unknown source {self.source!r}; choose 'mnist' or 'demo'")
        if self.train_size is not None:
            from midebias.datasets.registry import max_train_size

            most = max_train_size(self.source, self.val_fraction)
            if self.train_size > most:
                raise ValueError(
                    f"--train-size {self.train_size} is more than the {most} training images "
                    f"of --source {self.source} (after holding out --val-fraction "
                    f"{self.val_fraction})"
                )
        wrong = [
            flag
            for flag, given in (
                ("--sensitive", self.sensitive is not None),
                ("--include-sensitive", self.include_sensitive),
                ("--split-seed", self.split_seed != 0),
            )
            if given
        ]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} apply to the tabular benchmarks")

    def _resolve_tabular(self, spec) -> None:
        wrong = [
            flag
            for flag, given in (
                ("--bias-var/--rho", self.strength is not None),
                ("--train-size", self.train_size is not None),
                ("--bias-code", self.bias_code is not None),
                ("--source", self.source != "mnist"),
                ("--channels-last", self.channels_last),
            )
            if given
        ]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} apply to image benchmarks, not {self.benchmark}")
        if self.model != "mlp":
            raise ValueError(f"--model {self.model}: {self.benchmark} takes the mlp")
        self.sensitive = spec.sensitive if self.sensitive is None else self.sensitive
        if self.sensitive not in spec.sensitive_choices:
            raise ValueError(
                f"--sensitive {self.sensitive} is not available for {self.benchmark}; choose "
                f"one of {', '.join(spec.sensitive_choices)}"
            )
        if self.split_seed < 0:
            raise ValueError(f"--split-seed must be >= 0, got {self.split_seed}")

    def _resolve_folder(self, spec) -> None:
        wrong = [
            flag
            for flag, given in (
                ("--bias-var/--rho", self.strength is not None),
                ("--train-size", self.train_size is not None),
                ("--bias-code", self.bias_code is not None),
                ("--source", self.source != "mnist"),
                ("--sensitive", self.sensitive is not None),
                ("--include-sensitive", self.include_sensitive),
                ("--split-seed", self.split_seed != 0),
            )
            if given
        ]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} do not apply to {self.benchmark}")
        if self.model == "mlp":
            raise ValueError(f"--model mlp is for feature vectors, not {self.benchmark}")
        if self.data_dir is None:
            raise ValueError(f"--benchmark {self.benchmark} needs --data-dir (the image folder)")
        if self.benchmark == "imdb":
            if self.target is not None or self.bias_columns:
                raise ValueError(
                    "imdb's target (gender) and bias (age bins) are fixed; "
                    "--target/--bias are for --benchmark folder"
                )
            if self.test_fraction != 0.2:
                raise ValueError(
                    "--test-fraction applies to --benchmark folder; imdb's test "
                    "split is Kim et al.'s test list"
                )
            self.train_split = "eb1" if self.train_split is None else self.train_split
            if self.train_split not in ("eb1", "eb2"):
                raise ValueError(f"--train-split must be eb1 or eb2, got {self.train_split}")
        else:
            if not self.target:
                raise ValueError("--benchmark folder needs --target COLUMN")
            if not self.bias_columns:
                raise ValueError("--benchmark folder needs --bias COLUMN [COLUMN ...]")
            self.bias_columns = list(self.bias_columns)
            if self.train_split is not None:
                raise ValueError("--train-split applies to imdb")
        if self.bias_bins is not None and self.bias_bins < 2:
            raise ValueError(f"--bias-bins must be at least 2, got {self.bias_bins}")
        if not 0 < self.test_fraction < 1 or self.test_fraction + self.val_fraction >= 1:
            raise ValueError(
                f"--test-fraction must be in (0, 1) with --val-fraction summing under 1, "
                f"got {self.test_fraction}"
            )
        self.image_size = spec.image_size if self.image_size is None else self.image_size
        if self.image_size is not None and self.image_size < 8:
            raise ValueError(f"--image-size must be at least 8, got {self.image_size}")
        if self.workers < 0:
            raise ValueError(f"--workers must be >= 0, got {self.workers}")

    def _refuse_folder_flags(self) -> None:
        wrong = [
            flag
            for flag, given in (
                ("--target", self.target is not None),
                ("--bias", bool(self.bias_columns)),
                ("--bias-bins", self.bias_bins is not None),
                ("--train-split", self.train_split is not None),
                ("--image-size", self.image_size is not None),
                ("--skip-bad-images", self.skip_bad_images),
                ("--test-fraction", self.test_fraction != 0.2),
                ("--no-augment", not self.augment),
                ("--workers", self.workers != 2),
            )
            if given
        ]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} apply to --benchmark folder/imdb")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
