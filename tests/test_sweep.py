"""`midebias sweep` (a TOML grid -> `midebias train` runs) and `midebias report` (mean +-
std over seeds from run folders)."""

from __future__ import annotations

import argparse
import csv
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from midebias.cli import main
from midebias.sweep import check, expand, read_spec

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

TINY = """
[base]
benchmark = "colored-mnist"
source = "demo"
train_size = 100
epochs = 2
batch_size = 50
no_audit = true
"""


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_grid_expands_to_train_commands_with_stable_names(tmp_path):
    spec = _spec(
        tmp_path,
        TINY
        + """
[grid]
method = ["vanilla", "mi:fast"]
bias_var = [0.02, 0.05]
seed = [0, 1]
[grid.set]
lambda = [1e-05, 2.0]
""",
    )
    sweep = expand(read_spec(spec))
    assert len(sweep.runs) == 16  # 2 x 2 x 2 x 2, the first axis slowest
    names = [r.name for r in sweep.runs]
    assert names[0] == "method=vanilla_bias_var=0.02_seed=0_lambda=1e-05"
    assert names[-1] == "method=mi-fast_bias_var=0.05_seed=1_lambda=2"
    assert len(set(names)) == 16
    assert expand(read_spec(spec)).runs[5].name == names[5]  # the same every time
    run = sweep.runs[-1]
    assert run.label == "mi:fast"
    assert run.command(tmp_path / "out") == [
        *("train", "--benchmark", "colored-mnist", "--source", "demo", "--train-size", "100"),
        *("--epochs", "2", "--batch-size", "50", "--no-audit", "--method", "mi"),
        *("--bias-var", "0.05", "--seed", "1", "--set", "preset=fast", "--set", "lambda=2"),
        *("--label", "mi:fast", "--no-progress", "--out", str(tmp_path / "out" / names[-1])),
    ]
    assert "--label" not in sweep.runs[0].command(tmp_path)  # vanilla: its own name


def test_name_template_and_strength_follow_the_benchmark(tmp_path):
    spec = read_spec(
        _spec(
            tmp_path,
            """
name = "{method}_s{strength}_seed{seed}"
[base]
benchmark = "biased-mnist"
[grid]
method = ["lnl:stable"]
strength = [0.999, 0.99]
seed = [3]
""",
        )
    )
    runs = expand(spec).runs
    assert [r.name for r in runs] == ["lnl-stable_s0.999_seed3", "lnl-stable_s0.99_seed3"]
    assert runs[0].command(Path("o"))[5:7] == ["--rho", "0.999"]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("lamda = [1]", "grid.lamda: unknown field"),
        ("seed = []", "grid.seed is an empty list"),
        ("seed = 3", "grid.seed must be a list"),
        ("eval_every = [0]", "run eval_every=0: argument --eval-every: must be at least 1, got 0"),
        ("bias_var = [2.0]", "run bias_var=2: --bias-var must be in (0, 1], got 2.0"),
        ("method = ['nope']", "argument --method: invalid choice: 'nope'"),
        ("out = ['x']", "grid.out: set by the sweep itself"),
        ("set = {lambda = [-1]}", "run lambda=-1: --set lambda=-1:"),
        ("seed = [0, 0]", "grid.seed lists a value twice"),
    ],
)
def test_bad_spec_is_refused_before_any_run(tmp_path, capsys, grid, message):
    spec = _spec(tmp_path, TINY + "[grid]\n" + grid + "\n")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(spec), "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and str(spec) in err and "Traceback" not in err
    assert not out.exists()  # nothing run, no folder left behind


def test_bad_spec_files_are_named(tmp_path, capsys):
    cases = [
        ("oops = 1\n", "unknown key 'oops'"),
        ("[base\n", "not valid TOML"),
        (TINY + "seed = [1]\n", "base.seed is a list: put it under [grid]"),
        (TINY.replace("[base]", 'name = "same"\n[base]') + "[grid]\nseed = [0, 1]\n", "same"),
    ]
    for text, message in cases:
        with pytest.raises(SystemExit) as e:
            main(["sweep", str(_spec(tmp_path, text)), "--out", str(tmp_path / "o")])
        assert e.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")])
    assert "missing.toml: no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _fake_run(folder: Path, status: str, config: bool = True) -> None:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"status": status}))
    (folder / "metrics.jsonl").write_text("")
    if config:
        (folder / "config.json").write_text("{}")


def test_print_commands_skips_finished_and_resumes_unfinished(tmp_path, capsys):
    spec = _spec(tmp_path, TINY + "[grid]\nseed = [0, 1, 2, 3]\n")
    out = tmp_path / "out"
    _fake_run(out / "seed=0", "finished")
    _fake_run(out / "seed=1", "running")  # killed: config.json and a checkpoint
    _fake_run(out / "seed=2", "running", config=False)  # killed before its config
    assert main(["sweep", str(spec), "--out", str(out), "--print-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    args = [shlex.split(line) for line in lines]
    assert all(a[:2] == ["midebias", "train"] for a in args)
    assert args[0][-3:] == ["--out", str(out / "seed=1"), "--resume"]
    assert args[1][-3:] == ["--out", str(out / "seed=2"), "--overwrite"]
    assert args[2][-2:] == ["--out", str(out / "seed=3")]
    assert main(["sweep", str(spec), "--out", str(out), "--dry-run"]) == 0
    states = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert states == ["finished", "unfinished", "stale", "pending"]


def _write_run(folder: Path, label: str, seed: int, strength: float, acc: float, **extra):
    folder.mkdir(parents=True)
    method = label.partition(":")[0]
    config = {"benchmark": "colored-mnist", "method": method, "label": label, "seed": seed}
    config.update(strength=strength, epochs=2, settings={"lambda_": extra.pop("lam", 1.0)})
    config["data"] = {"seed": seed}
    (folder / "config.json").write_text(json.dumps(config))
    metrics = {"method": method, "seed": seed, "test_accuracy": acc, "bias_var": strength}
    metrics["bias_probe_accuracy"] = 0.5
    (folder / "metrics.json").write_text(json.dumps({**metrics, **extra}))
    (folder / "run.json").write_text('{"status": "finished"}')


def test_report_groups_seeds_and_writes_json_and_csv(tmp_path, capsys):
    runs = tmp_path / "runs"
    _write_run(runs / "a" / "v0", "vanilla", 0, 0.02, 0.2)
    _write_run(runs / "a" / "v1", "vanilla", 1, 0.02, 0.4)
    _write_run(runs / "b" / "m0", "mi:fast", 0, 0.02, 0.5, lam=2.0)
    _write_run(runs / "b" / "m1", "mi:fast", 1, 0.02, 0.7, lam=2.0)
    _write_run(runs / "b" / "m2", "mi:fast", 0, 0.02, 0.9, lam=5.0)
    _fake_run(runs / "b" / "killed", "running")
    rc = main(["report", str(runs / "a"), str(runs / "b"), "--json", str(tmp_path / "t.json")])
    assert rc == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == [
        "method",
        "set.lambda_",
        "n",
        "test_accuracy",
        "bias_probe_accuracy",
    ]
    assert lines[2].split()[:5] == ["mi:fast", "2.000", "2", "0.600", "+-"]
    assert lines[3].split()[:4] == ["mi:fast", "5.000", "1", "0.900"]
    assert lines[4].split()[:6] == ["vanilla", "1.000", "2", "0.300", "+-", "0.141"]
    assert "1 unfinished runs left out" in err and "killed" in err
    table = json.loads((tmp_path / "t.json").read_text())
    assert table["common"]["strength"] == 0.02 and table["columns"] == ["set.lambda_"]
    assert [g["n"] for g in table["groups"]] == [2, 1, 2]
    assert table["groups"][2]["test_accuracy_std"] == pytest.approx(0.1414, abs=1e-4)

    assert (
        main(["report", str(runs), "--metrics", "test_accuracy", "--csv", str(tmp_path / "t.csv")])
        == 0
    )
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [r["method"] for r in rows] == ["mi:fast", "mi:fast", "vanilla"]
    assert float(rows[0]["test_accuracy"]) == pytest.approx(0.6)
    assert set(rows[0]) == {"method", "set.lambda_", "n", "test_accuracy", "test_accuracy_std"}


def test_report_counts_keys_an_older_run_lacks_as_their_default(tmp_path, capsys):
    """A run folder written before a TrainConfig field existed groups with newer runs that
    write that field at its default, and apart from runs with another value."""
    runs = tmp_path / "runs"
    _write_run(runs / "old", "vanilla", 0, 0.02, 0.2)  # no `augment` key
    for name, seed, acc, augment in (("new", 1, 0.4, True), ("other", 2, 0.9, False)):
        _write_run(runs / name, "vanilla", seed, 0.02, acc)
        cfg = json.loads((runs / name / "config.json").read_text())
        (runs / name / "config.json").write_text(json.dumps({**cfg, "augment": augment}))
    assert main(["report", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[0].split()
    rows = {r[head.index("augment")]: r for r in (line.split() for line in lines[2:])}
    assert rows["True"][head.index("n")] == "2" and rows["True"][head.index("n") + 1] == "0.300"
    assert rows["False"][head.index("n")] == "1"


def test_report_errors_name_the_path_or_metric(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for argv, message in [
        (["report", str(tmp_path / "nope")], "nope: no such folder"),
        (["report", str(tmp_path / "empty")], "empty: no run folders in it"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err
    _write_run(tmp_path / "r" / "v0", "vanilla", 0, 0.02, 0.2)
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path / "r"), "--metrics", "tset_accuracy"])
    assert "--metrics tset_accuracy: no run has it" in capsys.readouterr().err


@pytest.mark.slow
def test_report_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    for seed, strength in [(0, 0.02), (1, 0.02), (0, 0.05)]:
        _write_run(tmp_path / "r" / f"v{seed}{strength}", "vanilla", seed, strength, 0.2 + seed)
    assert main(["report", str(tmp_path / "r"), "--plot", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_killed_runs_are_reported_then_resumed_through_submitit(tmp_path, capsys, monkeypatch):
    """Two tiny runs SIGKILLed after epoch 1 (the resume tests' hook): the sweep names
    them and exits 1; submitit's local executor then continues them with --resume; with a
    third seed, the pool of processes runs only that one."""
    pytest.importorskip("submitit")
    spec = _spec(tmp_path, TINY + "[grid]\nseed = [0, 1]\n")
    out = tmp_path / "out"
    monkeypatch.setenv("MIDEBIAS_TEST_KILL_AFTER_EPOCH", "1")
    assert main(["sweep", str(spec), "--out", str(out), "--jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert "run seed=0 failed: exit -9: killed by signal 9" in err and "seed=1 failed" in err
    first = [(out / f"seed={s}" / "metrics.jsonl").read_text() for s in (0, 1)]
    assert all(len(log.splitlines()) == 1 for log in first)  # epoch 1 checkpointed

    monkeypatch.delenv("MIDEBIAS_TEST_KILL_AFTER_EPOCH")
    argv = ["sweep", str(spec), "--out", str(out), "--executor", "submitit-local"]
    assert main([*argv, "--jobs", "2", "--time", "5"]) == 0
    for s, log in zip((0, 1), first, strict=True):
        run = out / f"seed={s}"
        assert json.loads((run / "run.json").read_text())["status"] == "finished"
        lines = (run / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == 2 and lines[0] == log.strip()  # continued, not retrained
    capsys.readouterr()
    spec.write_text(spec.read_text().replace("[0, 1]", "[0, 1, 2]"))  # one more seed
    assert main(["sweep", str(spec), "--out", str(out)]) == 0  # the pool, 1 process
    assert "1 done, 0 failed, 2 already finished" in capsys.readouterr().err
    assert main(["sweep", str(spec), "--out", str(out), "--print-commands"]) == 0
    assert capsys.readouterr().out == ""  # nothing left to do
    assert main(["report", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[:2] == ["vanilla", "3"]


def test_benchmark_sweep_script_keeps_its_folder_names_and_labels(tmp_path, monkeypatch):
    """benchmarks/sweep.py runs through this machinery with its old run names (the
    committed summaries' `run` keys) and labels; --set goes to the non-vanilla methods."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    import sweep as bench

    methods, strengths, seeds = ["vanilla", "mi:fast"], [0.02, 0.035], [0, 1]
    args = argparse.Namespace(
        benchmark="colored-mnist",
        methods=methods,
        strengths=strengths,
        seeds=seeds,
        epochs=5,
        train_size=10000,
        batch_size=None,
        model=None,
        lr=None,
        settings=[("lambda", "2")],
        tag="t",
        eval_every=5,
        no_audit=False,
        data_dir=None,
        device="cpu",
        out=tmp_path,
    )
    runs = bench.runs(args)
    expected = [(m, s, seed) for s in strengths for seed in seeds for m in methods]
    assert [r.name for r in runs] == [bench.run_name(m, s, seed, "t") for m, s, seed in expected]
    assert runs[1].name == "mi-fast-t_s0.02_seed0" and runs[1].label == "mi:fast[t]"
    cmd = runs[1].command(tmp_path)
    assert cmd[cmd.index("--set") :][:4] == ["--set", "preset=fast", "--set", "lambda=2"]
    assert "--set" not in runs[0].command(tmp_path)


def test_the_specs_in_the_docs_expand_to_the_runs_they_announce():
    doc = (Path(__file__).parents[1] / "docs" / "sweeps.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", doc, flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        announced = int(re.search(r"= (\d+) runs", block).group(1))
        sweep = expand(tomllib.loads(block))
        check(sweep, Path("unused"), device="cpu")  # every run's flags as train checks them
        assert len(sweep.runs) == announced


@pytest.mark.skipif(shutil.which("srun") is not None, reason="this machine has Slurm")
def test_slurm_without_slurm_is_one_line_and_submits_nothing(tmp_path, capsys):
    pytest.importorskip("submitit")
    spec = _spec(tmp_path, TINY + "[grid]\nseed = [0, 1]\n")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(spec), "--out", str(out), "--executor", "slurm", "--gpus", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--executor slurm: " in err and "srun" in err and "Traceback" not in err
    assert not out.exists()  # nothing submitted, no folder
    with pytest.raises(SystemExit):  # Slurm options without Slurm
        main(["sweep", str(spec), "--out", str(out), "--partition", "gpu"])
    assert "apply to --executor slurm" in capsys.readouterr().err


def test_slurm_gets_one_job_array_with_the_options(tmp_path, capsys):
    """Through submitit's own stand-in for Slurm (its sbatch is mocked): one array of the
    pending runs, at most --jobs at once, the options as #SBATCH lines."""
    pytest.importorskip("submitit")
    test_slurm = pytest.importorskip("submitit.slurm.test_slurm")
    spec = _spec(tmp_path, TINY + "[grid]\nseed = [0, 1, 2]\n")
    out = tmp_path / "out"
    _fake_run(out / "seed=0", "finished")
    argv = ["sweep", str(spec), "--out", str(out), "--executor", "slurm", "--jobs", "2"]
    argv += ["--partition", "gpu", "--gpus", "1", "--cpus", "4", "--time", "30"]
    with test_slurm.mocked_slurm():
        assert main([*argv, "--slurm", "account=abc"]) == 0
    assert "submitted 2 jobs" in capsys.readouterr().err
    script = next((out / "submitit").glob("*_submission.sh")).read_text()
    for line in ["--array=0-1%2", "--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=4"]:
        assert f"#SBATCH {line}\n" in script
    assert "#SBATCH --time=30\n" in script and "#SBATCH --account=abc\n" in script


@pytest.mark.slow
def test_batch_trains_batchable_runs_together_and_the_rest_as_processes(tmp_path, capsys):
    # 2 seeds x 2 methods: the two mi runs train as one batch; lnl does not batch and its
    # runs are processes. A batched run's metrics equal the single run's.
    spec = _spec(tmp_path, TINY + '[grid]\nseed = [0, 1]\nmethod = ["mi", "lnl"]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--batch", "4"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished") == 4
    assert not (out / "logs" / "seed=0_method=mi.log").exists()  # trained in this process
    assert (out / "logs" / "seed=0_method=lnl.log").exists()
    single = tmp_path / "single"
    assert main(["train", *TINY_FLAGS, "--method", "mi", "--seed", "1", "--out", str(single)]) == 0
    one = json.loads((single / "metrics.json").read_text())
    many = json.loads((out / "seed=1_method=mi" / "metrics.json").read_text())
    one.pop("seconds_per_epoch"), many.pop("seconds_per_epoch")
    assert one == many
    assert main(["sweep", str(spec), "--out", str(out), "--batch", "4"]) == 0
    assert "nothing to do" in capsys.readouterr().err


def test_batch_needs_the_processes_executor(tmp_path, capsys):
    spec = _spec(tmp_path, TINY + "[grid]\nseed = [0, 1]\n")
    with pytest.raises(SystemExit):
        main(
            [
                "sweep",
                str(spec),
                "--out",
                str(tmp_path / "o"),
                "--batch",
                "2",
                "--executor",
                "slurm",
            ]
        )
    assert "--batch applies to --executor processes" in capsys.readouterr().err


TINY_FLAGS = ["--benchmark", "colored-mnist", "--source", "demo", "--train-size", "100"]
TINY_FLAGS += ["--epochs", "2", "--batch-size", "50", "--no-audit", "--no-progress"]
