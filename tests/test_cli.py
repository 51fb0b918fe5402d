"""The command line: a tiny end-to-end run, and clear errors before any work."""

from __future__ import annotations

import json
import os

import pytest

from midebias.cli import main


@pytest.mark.slow
def test_tiny_end_to_end_train(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--benchmark",
            "colored-mnist",
            "--bias-var",
            "0.03",
            "--source",
            "demo",
            "--epochs",
            "1",
            "--train-size",
            "256",
            "--batch-size",
            "64",
            "--no-progress",
            "--no-audit",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["bias_var"] == 0.03 and m["method"] == "vanilla" and m["epochs"] == 1
    assert m["train_size"] == 256
    # The printed summary reports the numbers written to metrics.json.
    out_text = capsys.readouterr().out
    assert f"test {m['test_accuracy']:.3f} aligned {m['aligned_accuracy']:.3f}" in out_text
    assert f"val {m['val_accuracy']:.3f}" in out_text and "bias_var=0.03" in out_text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--benchmark", "colored-mnist", "--rho", "0.9"], "--rho applies to biased-mnist"),
        (["--benchmark", "biased-mnist", "--bias-var", "0.02"], "--bias-var applies to"),
        (["--benchmark", "colored-mnist", "--bias-var", "-1"], "must be in (0, 1]"),
        (["--benchmark", "biased-mnist", "--rho", "2"], "--rho must be in [0, 1]"),
        (["--benchmark", "colored-mnist", "--epochs", "0"], "must be at least 1"),
        (["--benchmark", "colored-mnist", "--lr", "abc"], "expected a number"),
        (["--benchmark", "mnist"], "invalid choice"),
        (["--benchmark", "colored-mnist", "--set", "foo"], "expected KEY=VALUE"),
        (["--benchmark", "colored-mnist", "--set", "foo=1"], "--set foo=1: no such setting"),
    ],
)
def test_bad_flags_exit_nonzero_with_message(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", *argv, "--out", str(tmp_path / "r")])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # no work was done


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MIDEBIAS_OFFLINE", "1")
    monkeypatch.setenv("MIDEBIAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MIDEBIAS_DATA_DIR", raising=False)
    rc = main(
        ["train", "--benchmark", "colored-mnist", "--data-dir", str(tmp_path / "empty")]
        + ["--out", str(tmp_path / "r"), "--no-progress"]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err and "MIDEBIAS_DATA_DIR" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()  # nothing half-written


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MIDEBIAS_DATA_DIR"), reason="needs the UCI files")
def test_tabular_train_writes_fairness_metrics(tmp_path):
    out = tmp_path / "g"
    rc = main(
        ["train", "--benchmark", "german", "--sensitive", "age", "--method", "mi"]
        + ["--set", "lambda=1", "--epochs", "2", "--out", str(out)]
    )
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in [
        "accuracy",
        "sensitive_probe_accuracy",
        "sensitive_majority_rate",
        "demographic_parity_difference",
        "equalized_odds_difference",
    ]:
        assert isinstance(m[key], float), key  # written as null if it was NaN or inf
    # German's test split is 70% good credit: the model is no worse than that class's rate
    # (a model predicting the other class would score 0.3).
    assert m["accuracy"] >= 0.65
    assert (out / "metrics.jsonl").read_text().count("\n") == 2


@pytest.mark.parametrize("flag", [["--bias-var", "0.02"], ["--channels-last"]])
def test_image_flags_are_rejected_for_tabular(tmp_path, capsys, flag):
    with pytest.raises(SystemExit):
        main(["train", "--benchmark", "adult", *flag, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "apply to image benchmarks" in err and flag[0] in err


@pytest.mark.slow
def test_audit_command_adds_the_leakage_audit_to_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--benchmark", "colored-mnist", "--source", "demo", "--epochs", "1"]
    argv += ["--train-size", "128", "--no-progress", "--no-audit", "--out", str(out)]
    assert main(argv) == 0
    assert "bias_probe_accuracy" not in json.loads((out / "metrics.json").read_text())
    assert main(["audit", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    # A plain network trained on colour-biased digits keeps the colour in z: the audit's
    # probe reads it far above the majority rate and its MI estimate is well above 0.
    assert m["bias_probe_accuracy"] > m["bias_majority_rate"] + 0.3
    assert m["mi_posthoc"] > 0.5
    assert (
        f"bias-probe {m['bias_probe_accuracy']:.3f} MI {m['mi_posthoc']:.3f}"
        in capsys.readouterr().out
    )


@pytest.mark.slow
def test_audit_split_reads_another_split_and_leaves_the_run_alone(tmp_path):
    from midebias.training.reaudit import audit_split

    out = tmp_path / "run"
    argv = ["train", "--benchmark", "colored-mnist", "--source", "demo", "--epochs", "1"]
    argv += ["--train-size", "1000", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    before = (out / "metrics.json").read_text()
    val = audit_split(out, "val_unbiased")
    assert (out / "metrics.json").read_text() == before
    # One epoch of plain training on colour-biased digits: the colour is in z, on the
    # held-out training digits too.
    assert val["bias_probe_accuracy"] > val["bias_majority_rate"] + 0.3
    with pytest.raises(ValueError, match="has no split 'banana'; it has train, val"):
        audit_split(out, "banana")


def test_audit_split_refuses_tabular_runs(tmp_path):
    from midebias.training.reaudit import audit_split

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"benchmark": "german"}))
    with pytest.raises(ValueError, match="generated image benchmarks, not 'german'"):
        audit_split(run)


DEMO_RUN = ["--benchmark", "colored-mnist", "--source", "demo", "--no-progress"]


MI_SET = [*DEMO_RUN, "--method", "mi", "--set"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*DEMO_RUN, "--train-size", "6000"], "--train-size 6000 is more than the 5400"),
        (["--benchmark", "colored-mnist", "--train-size", "60000"], "more than the 54000"),
        ([*DEMO_RUN, "--seed", "-1"], "--seed must be >= 0"),
        ([*DEMO_RUN, "--device", "cuda"], "--device cuda: CUDA is not available"),
        ([*DEMO_RUN, "--device", "banana"], "--device 'banana' is not a device"),
        (["--benchmark", "german", "--device", "cuda"], "--device cuda: CUDA is not available"),
        (["--benchmark", "german", "--seed", "-1"], "--seed must be >= 0"),
        (
            [*DEMO_RUN, "--method", "mi", "--set", "lambda=nan"],
            "--set lambda=nan: must be a finite",
        ),
        (
            [*DEMO_RUN, "--method", "mi", "--set", "critic_lr=inf"],
            "--set critic_lr=inf: must be a finite",
        ),
        (
            [*DEMO_RUN, "--method", "mi", "--set", "critic_batch=0"],
            "--set critic_batch=0: must be >= 1",
        ),
        ([*DEMO_RUN, "--lr", "inf"], "--lr: must be a positive finite number"),
        ([*DEMO_RUN, "--lr", "nan"], "--lr: must be a positive finite number"),
        (
            [*DEMO_RUN, "--method", "mi", "--set", "estimator=nope"],
            "--set estimator=nope: must be one of",
        ),
        ([*DEMO_RUN, "--method", "blindeye", "--bias-code", "rgb"], "needs a categorical"),
        ([*DEMO_RUN, "--method", "lnl", "--bias-code", "rgb"], "needs a categorical"),
    ],
)
def test_invalid_inputs_fail_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as e:
        main(["train", *argv, "--out", str(tmp_path / "r")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_unwritable_out_fails_before_any_work(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(locked) else real(p, m))
    with pytest.raises(SystemExit) as e:
        main(["train", *DEMO_RUN, "--out", str(locked / "a" / "r")])
    assert e.value.code == 2
    assert f"{locked} is not writable" in capsys.readouterr().err
    assert list(locked.iterdir()) == []


def test_unreadable_data_file_fails_before_any_work(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    bad = data / "mnist" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"x")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(bad) else real(p, m))
    with pytest.raises(SystemExit) as e:
        main(
            ["train", "--benchmark", "colored-mnist", "--data-dir", str(data)]
            + ["--out", str(tmp_path / "r")]
        )
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "train-images-idx3-ubyte.gz" in err and "--data-dir" in err
    assert not (tmp_path / "r").exists()
