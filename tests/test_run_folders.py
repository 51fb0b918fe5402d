"""A run folder is always one run: incomplete runs are marked, other files are never
overwritten, --overwrite swaps the new run in only once it is set up, and `audit` refuses
what it cannot check."""

from __future__ import annotations

import argparse
import json

import pytest

from midebias.cli import main
from midebias.demo import run_demo
from midebias.training import RunDir, TrainConfig, train

TINY = ["train", "--benchmark", "colored-mnist", "--source", "demo", "--train-size", "128"]
TINY += ["--epochs", "1", "--batch-size", "64", "--no-audit", "--no-progress"]


def test_out_with_other_files_is_refused_even_with_overwrite(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}')
    (out / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        assert main([*TINY, "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert "not a midebias run" in err and "Traceback" not in err
    assert (out / "config.json").read_text() == '{"mine": true}'
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "notes.txt"]


@pytest.mark.slow
def test_a_run_is_marked_running_until_it_finishes(tmp_path):
    out = tmp_path / "r"
    assert main([*TINY, "--out", str(out)]) == 0
    assert json.loads((out / "run.json").read_text()) == {"status": "finished"}


def _first_run(tmp_path):
    out = tmp_path / "r"
    assert main([*TINY, "--out", str(out)]) == 0
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.mark.slow
def test_overwrite_failing_during_setup_keeps_the_old_run(tmp_path, capsys):
    out, before = _first_run(tmp_path)
    # blindeye cannot use the continuous 'rgb' code: the method's set-up fails after the
    # data work, as a late failure would.
    cfg = TrainConfig(
        benchmark="colored-mnist",
        method="blindeye",
        epochs=1,
        train_size=128,
        source="demo",
        bias_code="rgb",
        audit=False,
        progress=False,
    )
    with pytest.raises(ValueError, match="categorical"):
        train(cfg, out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old run, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no staging folder left


@pytest.mark.slow
def test_overwrite_swaps_in_the_new_run_and_says_what_it_replaced(tmp_path, capsys):
    out, before = _first_run(tmp_path)
    capsys.readouterr()
    assert main([*TINY, "--seed", "1", "--out", str(out), "--overwrite"]) == 0
    assert "replaced a finished vanilla run on colored-mnist (seed 0)" in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert json.loads((out / "metrics.json").read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.slow
def test_demo_refuses_to_replace_earlier_runs_without_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    (out / "vanilla").mkdir(parents=True)
    RunDir(out / "vanilla").write_json("config.json", {"benchmark": "colored-mnist"})
    before = (out / "vanilla" / "config.json").read_text()
    assert main(["demo", "--out", str(out), "--methods", "vanilla", "--no-progress"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "vanilla" / "config.json").read_text() == before
    args = argparse.Namespace(
        bias_var=0.02,
        epochs=1,
        methods=["vanilla"],
        seed=0,
        out=str(out),
        no_progress=True,
        overwrite=True,
    )
    assert run_demo(args) == 0
    assert json.loads((out / "vanilla" / "run.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_audit_refuses_what_it_cannot_check(tmp_path, capsys):
    out, _ = _first_run(tmp_path)
    cases = {}
    (tmp_path / "empty").mkdir()
    cases["empty"] = "no config.json"
    tab = tmp_path / "tab"
    tab.mkdir()
    (tab / "config.json").write_text('{"benchmark": "german", "sensitive": "age"}')
    (tab / "run.json").write_text('{"status": "finished"}')
    cases["tab"] = "german run; audit re-checks image runs only"
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.json", "checkpoint.pt", "metrics.jsonl"):
        (unfinished / name).write_bytes((out / name).read_bytes())
    (unfinished / "run.json").write_text('{"status": "running"}')
    cases["unfinished"] = "unfinished run"
    capsys.readouterr()
    for name, message in cases.items():
        assert main(["audit", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (unfinished / "metrics.json").exists()
