"""Checkpoints every epoch and `train --resume`: a run killed with SIGKILL and resumed ends
with exactly the metrics of the uninterrupted run (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from midebias.cli import main
from midebias.methods import get_method
from midebias.models import make_model
from midebias.penalty import MIPenalty
from midebias.training import load_checkpoint

TINY = ["--benchmark", "colored-mnist", "--source", "demo", "--train-size", "256"]
TINY += ["--epochs", "2", "--batch-size", "64", "--no-audit", "--no-progress"]
#: A tabular run goes through the same loop, so it resumes the same way (needs the UCI files).
GERMAN = ["--benchmark", "german", "--epochs", "2", "--no-audit", "--no-progress"]


def _cli(args: list[str], kill_after: int | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("MIDEBIAS_TEST_KILL_AFTER_EPOCH", None)
    if kill_after is not None:
        env["MIDEBIAS_TEST_KILL_AFTER_EPOCH"] = str(kill_after)
    return subprocess.run(
        [sys.executable, "-m", "midebias.cli", *args], env=env, capture_output=True, text=True
    )


def _results(run: Path) -> tuple[dict, list[dict]]:
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("seconds_per_epoch")
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in log:
        r.pop("seconds")
    return metrics, log


@pytest.mark.slow
@pytest.mark.parametrize(
    ("base", "method"),
    [
        (TINY, "vanilla"),
        (TINY, "mi"),
        pytest.param([*TINY, "--lr-schedule", "cosine"], "mi", id="mi-cosine"),
        pytest.param(
            GERMAN,
            "mi",
            id="german-mi",
            marks=pytest.mark.skipif(
                not os.environ.get("MIDEBIAS_DATA_DIR"), reason="needs the UCI files"
            ),
        ),
    ],
)
def test_sigkilled_run_resumes_to_the_same_metrics(tmp_path, base, method):
    flags = [*base, "--method", method]
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert _cli(["train", *flags, "--out", str(ref)]).returncode == 0

    killed = _cli(["train", *flags, "--out", str(run)], kill_after=1)
    assert killed.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    assert [p.name for p in run.iterdir() if ".tmp" in p.name] == []  # atomic writes
    epoch1 = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])

    resumed = _cli(["train", *flags, "--out", str(run), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert _results(run) == _results(ref)
    # Continued, not retrained: epoch 1's record (with its timing) is the killed run's.
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[0]) == epoch1


def _train_args(tmp_path, *extra):
    return ["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "r"), *extra]


@pytest.mark.slow
def test_resume_refuses_a_finished_run(tmp_path, capsys):
    assert main(_train_args(tmp_path)) == 0
    capsys.readouterr()
    assert main(_train_args(tmp_path, "--resume")) == 2
    err = capsys.readouterr().err
    assert "already finished" in err and "Traceback" not in err


@pytest.mark.slow
def test_resume_refuses_other_flags(tmp_path, capsys):
    assert main(_train_args(tmp_path)) == 0
    (tmp_path / "r" / "run.json").write_text('{"status": "running"}')  # as if killed
    capsys.readouterr()
    assert main(_train_args(tmp_path, "--resume", "--seed", "3")) == 2
    err = capsys.readouterr().err
    assert "flags differ" in err and "seed" in err


def test_resume_refuses_a_folder_without_a_run(tmp_path, capsys):
    assert main(_train_args(tmp_path, "--resume")) == 2
    assert "no run to continue" in capsys.readouterr().err


def _method(name: str, seed: int = 0, **settings):
    torch.manual_seed(seed)
    model = make_model("simple-conv", in_channels=3, num_classes=10)
    return get_method(name)(
        model,
        lr=1e-3,
        c_dim=24,
        c_groups=[8, 8, 8],
        settings=settings,
        generator=torch.Generator().manual_seed(seed),
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vanilla", "mi", "blindeye", "lnl"])
def test_method_state_dict_round_trip(name, tmp_path):
    """state_dict holds every optimiser, critic, buffer and counter: a fresh method that
    loads it (through a weights_only file) takes the same next step as the original."""
    from midebias.methods import Batch

    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 3, 28, 28, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    c = torch.nn.functional.one_hot(torch.randint(0, 8, (16, 3), generator=g), 8).flatten(1)
    batch = Batch(x=x, y=y, c=c.float(), b=y)
    a = _method(name)
    a.start_epoch(lambda: iter([batch]))
    a.update(batch)
    torch.save(a.state_dict(), tmp_path / "s.pt")
    b = _method(name, seed=5)  # other initial weights
    b.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    b.generator.set_state(a.generator.get_state())
    a.update(batch)
    b.update(batch)
    for k, m in a.modules().items():
        for p, q in zip(m.state_dict().values(), b.modules()[k].state_dict().values(), strict=True):
            assert torch.equal(p, q), k
    if name == "mi":
        assert a.epochs_started == b.epochs_started == 1
        assert len(b.penalty.recent) == len(a.penalty.recent) == 2
        assert b.penalty._started and torch.equal(a.penalty.z_mean, b.penalty.z_mean)


def test_penalty_state_dict_keeps_optimiser_and_recent_buffer(tmp_path):
    z = torch.randn(32, 4)
    c = torch.nn.functional.one_hot(torch.arange(32) % 4, 4).float()
    a = MIPenalty(4, 4, buffer=3, critic_steps=2, generator=torch.Generator().manual_seed(0))
    a.train_critic(z, c)
    torch.save(a.state_dict(), tmp_path / "p.pt")
    b = MIPenalty(4, 4, buffer=3, critic_steps=2, generator=torch.Generator().manual_seed(0))
    b.load_state_dict(torch.load(tmp_path / "p.pt", weights_only=True))
    assert b._started and len(b.recent) == 1 and torch.equal(b.recent[0][0], z)
    assert b.critic_opt.state_dict()["state"][0]["step"] == 2
