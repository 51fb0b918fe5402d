"""The training loop, its configuration, in-memory batching and run folders."""

from midebias.training.config import TrainConfig
from midebias.training.loop import TrainingError, train
from midebias.training.run import RunDir, RunError, load_checkpoint, read_run

__all__ = [
    "TrainConfig",
    "TrainingError",
    "train",
    "RunDir",
    "RunError",
    "load_checkpoint",
    "read_run",
]
