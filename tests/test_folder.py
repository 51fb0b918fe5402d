"""A folder of images + a CSV: loading, bias codes, splits, bad input, streaming batches."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest
import torch

from midebias.data.sources import DataError
from midebias.datasets.folder import ImageTable, load_folder
from midebias.datasets.streaming import StreamingSplit
from midebias.datasets.tensors import TensorSplit

PIL = pytest.importorskip("PIL.Image")


def make_folder(root, n=40, size=8, extra=None, drop=(), split=None, seed=0):
    """n random RGB PNGs under root/img and root/labels.csv: path, label (cat/dog),
    colour (red/green, agrees with the label 3 times in 4), age (a number per row)."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows, pixels = [], []
    for i in range(n):
        a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        PIL.fromarray(a).save(root / "img" / f"{i}.png")
        pixels.append(a)
        y = i % 2
        row = {
            "path": f"img/{i}.png",
            "label": ["cat", "dog"][y],
            "colour": ["red", "green"][y if i % 4 else 1 - y],
            "age": str(20 + 0.5 * i),
        }
        if split is not None:
            row["split"] = split(i)
        row.update((extra or {}).get(i, {}))
        rows.append({k: v for k, v in row.items() if k not in drop})
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return np.stack(pixels)


def test_loads_labels_bias_codes_and_a_seeded_stratified_split(tmp_path):
    make_folder(tmp_path)
    d = load_folder(tmp_path, "label", ["colour"], seed=3)
    assert d.num_classes == 2 and d.c_groups == [2] and d.image_size == (8, 8)
    assert sum(len(t) for t in d.splits.values()) == 40
    assert {k: len(t) for k, t in d.splits.items()} == {"train": 28, "val": 4, "test": 8}
    train = d["train"]
    assert train.codes.shape == (28, 2) and (train.codes.sum(1) == 1).all()
    assert (train.codes.argmax(1) == train.bias).all()  # one column: b is its category
    assert d.settings["classes"] == ["cat", "dog"]
    again = load_folder(tmp_path, "label", ["colour"], seed=3)
    assert again["test"].paths == d["test"].paths
    other = load_folder(tmp_path, "label", ["colour"], seed=4)
    assert other["test"].paths != d["test"].paths
    # Stratified: each (label, colour) group (10, 10, 20, 0 images) keeps its share.
    shares = {"train": [7, 7, 14, 0], "val": [1, 1, 2, 0], "test": [2, 2, 4, 0]}
    for k, t in d.splits.items():
        assert np.bincount(t.labels * 2 + t.bias, minlength=4).tolist() == shares[k]


def test_split_column_and_several_bias_columns(tmp_path):
    make_folder(tmp_path, split=lambda i: ["train", "train", "val", "test"][i % 4])
    d = load_folder(tmp_path, "label", ["colour", "age"], bins=3)
    assert {k: len(t) for k, t in d.splits.items()} == {"train": 20, "val": 10, "test": 10}
    assert d.settings["split"] == "column"
    assert d.c_groups == [2, 3]  # colour one-hot, then age in 3 quantile bins
    assert d.settings["bias"]["age"]["kind"] == "binned"
    assert d["train"].codes.shape[1] == 5
    assert d["train"].bias.max() < 6  # the joint group of the two columns


def test_continuous_bias_is_standardised(tmp_path):
    make_folder(tmp_path)
    d = load_folder(tmp_path, "label", ["age"])
    assert d.c_groups is None and d.settings["bias"]["age"]["kind"] == "continuous"
    allc = np.concatenate([t.codes for t in d.splits.values()])
    assert allc.shape[1] == 1
    assert abs(allc.mean()) < 1e-5 and abs(allc.std() - 1) < 1e-4
    assert set(np.concatenate([t.bias for t in d.splits.values()])) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"drop": ("colour",)}, "no column 'colour'"),
        ({"extra": {i: {"colour": "red"} for i in range(40)}}, "'colour' has a single value"),
        ({"extra": {3: {"label": ""}}}, "empty cells .*row 5, column 'label'"),
        ({"split": lambda i: "dev" if i == 0 else "train"}, "'split' holds 'dev'"),
    ],
)
def test_bad_csv_is_a_clear_error(tmp_path, kw, message):
    make_folder(tmp_path, **kw)
    with pytest.raises(DataError, match=message):
        load_folder(tmp_path, "label", ["colour"])


def test_missing_csv_names_the_file(tmp_path):
    with pytest.raises(DataError, match="labels.csv: no such file"):
        load_folder(tmp_path, "label", ["colour"])


def test_missing_and_corrupt_images_fail_or_are_skipped_with_a_count(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "img" / "5.png").unlink()
    (tmp_path / "img" / "7.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"1 missing \(first: .*5.png\); 1 not readable.*7.png"):
        load_folder(tmp_path, "label", ["colour"])
    d = load_folder(tmp_path, "label", ["colour"], skip_bad=True)
    assert d.settings["skipped_missing"] == 1 and d.settings["skipped_corrupt"] == 1
    paths = [p for t in d.splits.values() for p in t.paths]
    assert len(paths) == 38 and not any(p.endswith(("/5.png", "/7.png")) for p in paths)


def test_missing_pillow_names_the_extra(tmp_path, monkeypatch):
    make_folder(tmp_path)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(DataError, match=r"pip install midebias\[images\]"):
        load_folder(tmp_path, "label", ["colour"])


def _pair(tmp_path, n=30):
    pixels = make_folder(tmp_path, n=n)
    paths = [str(tmp_path / "img" / f"{i}.png") for i in range(n)]
    y = np.arange(n, dtype=np.int64) % 2
    b = (np.arange(n) // 3 % 2).astype(np.int64)
    codes = np.eye(2, dtype=np.float32)[b]
    tensors = TensorSplit(
        torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))),
        torch.from_numpy(y),
        torch.from_numpy(codes),
        torch.from_numpy(b),
    )
    return tensors, ImageTable(paths, y, codes, b)


@pytest.mark.parametrize("draw", ["stored", "shuffle", "weights"])
def test_streaming_batches_equal_in_memory_batches(tmp_path, draw):
    tensors, table = _pair(tmp_path)
    stream = StreamingSplit(table, (8, 8))
    kw = {"shuffle": draw == "shuffle", "min_last": 4}
    if draw == "weights":
        kw["weights"] = torch.linspace(0.1, 1, len(table))
    assert stream.num_batches(7, 4) == tensors.num_batches(7, 4)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    got = list(stream.batches(7, generator=g1, **kw))
    want = list(tensors.batches(7, generator=g2, **kw))
    assert len(got) == len(want) == tensors.num_batches(7, 4)
    for a, b in zip(got, want, strict=True):
        for f in ("x", "y", "c", "b"):
            assert torch.equal(getattr(a, f), getattr(b, f)), f
    assert torch.equal(g1.get_state(), g2.get_state())  # same draws from the generator


def test_shards_of_streamed_batches_are_the_in_memory_shards(tmp_path):
    """Under torchrun each process reads only its contiguous part of every global batch."""
    tensors, table = _pair(tmp_path)
    stream = StreamingSplit(table, (8, 8))
    for rank in (0, 1):
        kw = {"shuffle": True, "min_last": 4, "shard": (rank, 2)}
        got = list(stream.batches(7, generator=torch.Generator().manual_seed(3), **kw))
        want = list(tensors.batches(7, generator=torch.Generator().manual_seed(3), **kw))
        assert len(got) == len(want) > 1
        for a, b in zip(got, want, strict=True):
            assert a.sizes == b.sizes and sum(a.sizes) > len(a.y)
            for f in ("x", "y", "c", "b"):
                assert torch.equal(getattr(a, f), getattr(b, f)), f


def test_worker_processes_give_the_same_batches(tmp_path):
    _, table = _pair(tmp_path)
    one = StreamingSplit(table, (8, 8), workers=0)
    two = StreamingSplit(table, (8, 8), workers=2)
    a = list(one.batches(8, shuffle=True, generator=torch.Generator().manual_seed(1)))
    b = list(two.batches(8, shuffle=True, generator=torch.Generator().manual_seed(1)))
    assert all(torch.equal(p.x, q.x) for p, q in zip(a, b, strict=True))


def test_augmentation_is_seeded_and_only_on_shuffled_passes(tmp_path):
    tensors, table = _pair(tmp_path)
    aug = StreamingSplit(table, (8, 8), augment=True)
    plain = next(tensors.batches(30)).x
    assert torch.equal(next(aug.batches(30)).x, plain)  # evaluation order: no augmentation
    a = next(aug.batches(30, shuffle=True, generator=torch.Generator().manual_seed(0)))
    b = next(aug.batches(30, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(a.x, b.x)  # same generator, same crops and flips
    order = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(a.x, plain[order])  # but they differ from the plain images
    assert a.x.shape == plain.shape


def test_resize_when_an_image_size_is_given(tmp_path):
    _, table = _pair(tmp_path)
    x = next(StreamingSplit(table, (12, 10)).batches(4)).x
    assert x.shape == (4, 3, 12, 10) and 0 <= x.min() and x.max() <= 1


# --------------------------------------------------------------------------- train and CLI


@pytest.mark.slow
def test_every_method_trains_on_a_folder_through_the_cli(tmp_path, capsys):
    import json

    from midebias.cli import main

    make_folder(tmp_path / "d", n=120)
    base = ["train", "--benchmark", "folder", "--data-dir", str(tmp_path / "d")]
    base += ["--target", "label", "--model", "simple-conv", "--epochs", "1", "--batch-size", "16"]
    base += ["--workers", "0", "--no-progress", "--test-fraction", "0.6"]
    for method, bias in [("vanilla", "colour"), ("mi", "age"), ("blindeye", "colour")]:
        out = tmp_path / method
        audit = [] if method != "blindeye" else ["--no-audit"]
        assert main([*base, *audit, "--bias", bias, "--method", method, "--out", str(out)]) == 0
        m = json.loads((out / "metrics.json").read_text())
        assert m["train_size"] == 36 and 0 <= m["test_accuracy"] <= 1
        assert ("bias_probe_accuracy" in m and "mi_posthoc" in m) == (not audit)
    cfg = json.loads((tmp_path / "mi" / "config.json").read_text())
    assert cfg["data"]["bias"]["age"]["kind"] == "continuous"
    # Image folders start mi from staged: no Gaussian term for a wide z in small batches.
    assert (cfg["settings"]["preset"], cfg["settings"]["gaussian"]) == ("staged", 0.0)
    # `midebias audit` reads the folder again and reproduces the run's own audit.
    before = json.loads((tmp_path / "vanilla" / "metrics.json").read_text())
    (tmp_path / "vanilla" / "metrics.json").write_text("{}")
    assert main(["audit", str(tmp_path / "vanilla")]) == 0
    after = json.loads((tmp_path / "vanilla" / "metrics.json").read_text())
    for k in ("bias_probe_accuracy", "bias_majority_rate", "mi_posthoc"):
        assert after[k] == pytest.approx(before[k], abs=1e-6), k
    out = tmp_path / "lnl"
    argv = [*base, "--bias", "age", "--bias-bins", "3", "--method", "lnl", "--no-audit"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "lnl on folder" in capsys.readouterr().out


def test_continuous_bias_with_an_adversary_needs_bins(tmp_path, capsys):
    from midebias.cli import main

    make_folder(tmp_path / "d")
    argv = ["train", "--benchmark", "folder", "--data-dir", str(tmp_path / "d")]
    argv += ["--target", "label", "--bias", "age", "--method", "blindeye", "--workers", "0"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 1
    assert "pass --bias-bins N" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bias", "colour"], "needs --target COLUMN"),
        (["--target", "label"], "needs --bias COLUMN"),
        (["--target", "label", "--bias", "colour", "--bias-var", "0.1"], "--bias-var/--rho"),
        (["--target", "label", "--bias", "colour", "--model", "mlp"], "--model mlp"),
        (["--target", "label", "--bias", "colour", "--init-checkpoint", "nope.pt"], "nope.pt"),
    ],
)
def test_bad_folder_flags_exit_2_before_any_work(tmp_path, capsys, argv, message):
    from midebias.cli import main

    make_folder(tmp_path / "d", n=4)
    base = ["train", "--benchmark", "folder", "--data-dir", str(tmp_path / "d")]
    with pytest.raises(SystemExit) as e:
        main([*base, *argv, "--out", str(tmp_path / "r")])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_folder_flags_are_refused_elsewhere(tmp_path, capsys):
    from midebias.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--benchmark", "colored-mnist", "--target", "y", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--target apply to --benchmark folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- IMDB layout


def make_imdb(root, n=48, aux="auxiliary"):
    """Kim et al.'s layout in miniature: imdb_crop/NN/*.jpg of varied sizes and the four
    pickled .npy lists (written as those files are: object arrays)."""
    rng = np.random.default_rng(0)
    gt, names = {}, []
    for i in range(n):
        name = f"{i % 3:02d}/nm{i:07d}_rm1_1970-1-1_{2000 + i}.jpg"
        (root / "imdb_crop" / name).parent.mkdir(parents=True, exist_ok=True)
        side = 20 + i % 5
        PIL.fromarray(rng.integers(0, 256, (side, side + 2, 3), dtype=np.uint8)).save(
            root / "imdb_crop" / name
        )
        gender, old = i % 2, (i // 2) % 2
        age = [22, 51][old] + i % 5
        gt[name.encode()] = {"age": np.int64(age), "gender": gender}
        names.append((name, gender, old))
    eb1 = [m for m, g, o in names[: n // 2] if (g == 0) != o]  # young women, old men
    eb2 = [m for m, g, o in names[: n // 2] if (g == 0) == o]  # old women, young men
    test = [m for m, _, _ in names[n // 2 :]]
    (root / aux).mkdir(parents=True, exist_ok=True)

    def save(name, obj):
        arr = np.empty((), dtype=object)
        arr[()] = obj
        np.save(root / aux / name, arr if isinstance(obj, dict) else np.array(obj, dtype=object))

    save("imdb_age_gender.npy", gt)
    save("imdb_split.npy", {"train_list": [m for m, _, _ in names[: n // 2]], "test_list": test})
    save("eb1_img_list.npy", eb1)
    save("eb2_img_list.npy", eb2)
    return eb1, eb2, test


def test_imdb_loader_reads_kims_layout(tmp_path):
    from midebias.datasets.imdb import AGE_BINS, age_bin, load_imdb

    eb1, eb2, test = make_imdb(tmp_path)
    d = load_imdb(tmp_path, "eb1", val_fraction=0.25)
    assert set(d.splits) == {"train", "val", "eb2", "test"}
    assert len(d["train"]) + len(d["val"]) == len(eb1) and len(d["val"]) == 3
    assert len(d["eb2"]) == len(eb2) and len(d["test"]) == len(test)
    assert d.c_groups == [AGE_BINS] and d.num_classes == 2 and d.image_size is None
    # EB1: every woman (0) young, every man (1) old; the age bins say so.
    train = d["train"]
    assert train.bias[train.labels == 0].max() < 5 <= train.bias[train.labels == 1].min()
    assert d.settings["sha256"].keys() == {
        "imdb_age_gender.npy",
        "imdb_split.npy",
        "eb1_img_list.npy",
        "eb2_img_list.npy",
    }
    assert age_bin(np.array([5, 20, 24, 29, 40, 69, 70, 99])).tolist() == [
        0,
        1,
        1,
        2,
        5,
        10,
        11,
        11,
    ]
    d2 = load_imdb(tmp_path, "eb2")
    assert "eb1" in d2.splits and len(d2["eb1"]) == len(eb1)


def test_imdb_missing_files_are_named(tmp_path):
    from midebias.data.sources import MissingDataError
    from midebias.datasets.imdb import load_imdb

    make_imdb(tmp_path)
    (tmp_path / "auxiliary" / "eb2_img_list.npy").unlink()
    with pytest.raises(MissingDataError, match="missing eb2_img_list.npy.*learn-unbiased"):
        load_imdb(tmp_path)


def test_imdb_lists_are_unpickled_without_running_code(tmp_path):
    from midebias.datasets.imdb import load_npy

    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    arr = np.empty((), dtype=object)
    arr[()] = {"x": Evil()}
    np.save(tmp_path / "evil.npy", arr)
    with pytest.raises(DataError, match="refused to load builtins.print"):
        load_npy(tmp_path / "evil.npy")


@pytest.mark.slow
def test_imdb_trains_through_the_cli(tmp_path, capsys):
    import json

    from midebias.cli import main

    make_imdb(tmp_path / "d", n=80)
    argv = ["train", "--benchmark", "imdb", "--data-dir", str(tmp_path / "d"), "--image-size"]
    argv += ["16", "--model", "simple-conv", "--epochs", "1", "--workers", "0", "--no-progress"]
    assert main([*argv, "--method", "lnl", "--no-audit", "--out", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert {"val_accuracy", "eb2_accuracy", "test_accuracy"} <= set(m)
    assert "lnl on imdb" in capsys.readouterr().out


@pytest.mark.slow
def test_imdb_table_script_runs_every_method_on_both_splits(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "imdb.py"
    spec = importlib.util.spec_from_file_location("imdb_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    make_imdb(tmp_path / "d", n=80)
    argv = ["--data-dir", str(tmp_path / "d"), "--image-size", "16", "--epochs", "1"]
    argv += ["--workers", "0", "--no-audit", "--out", str(tmp_path / "out")]
    assert bench.main([*argv, "--model", "resnet18"]) == 0
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["rows"]
    assert [(r["train_split"], r["method"]) for r in rows] == [
        (s, m) for s in ("eb1", "eb2") for m in ("vanilla", "blindeye", "lnl", "mi")
    ]
    assert all(0 <= r["other_split_accuracy"] <= 1 for r in rows)


def test_a_test_split_too_small_for_the_audit_is_refused_up_front(tmp_path, capsys):
    from midebias.cli import main

    make_folder(tmp_path / "d")  # 8 test images: the audit's probe needs 22 for 2 groups
    argv = ["train", "--benchmark", "folder", "--data-dir", str(tmp_path / "d")]
    argv += ["--target", "label", "--bias", "colour", "--workers", "0"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 1
    assert "too few for the leakage audit of 2 bias groups (it needs at least 22)" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_killed_folder_run_resumes_to_the_same_metrics(tmp_path):
    """With augmentation on: its seeds come from the run's
    generator, which the checkpoint holds, so the resumed run sees the same crops."""
    import json
    import os
    import signal
    import subprocess

    make_folder(tmp_path / "d", n=48)
    flags = ["train", "--benchmark", "folder", "--data-dir", str(tmp_path / "d")]
    flags += ["--target", "label", "--bias", "colour", "--model", "simple-conv", "--epochs", "2"]
    flags += ["--batch-size", "8", "--workers", "0", "--no-audit", "--no-progress"]

    def cli(out, *extra, kill=None):
        env = {k: v for k, v in os.environ.items() if k != "MIDEBIAS_TEST_KILL_AFTER_EPOCH"}
        if kill is not None:
            env["MIDEBIAS_TEST_KILL_AFTER_EPOCH"] = str(kill)
        argv = [sys.executable, "-m", "midebias.cli", *flags, "--out", str(out), *extra]
        return subprocess.run(argv, env=env, capture_output=True, text=True)

    def results(run):
        m = json.loads((run / "metrics.json").read_text())
        m.pop("seconds_per_epoch")
        return m

    assert cli(tmp_path / "ref").returncode == 0
    assert cli(tmp_path / "run", kill=1).returncode == -signal.SIGKILL
    resumed = cli(tmp_path / "run", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert results(tmp_path / "run") == results(tmp_path / "ref")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--benchmark", "colored-mnist", "--workers", "3"], "--workers apply to --benchmark"),
        (["--benchmark", "colored-mnist", "--init-checkpoint", "CKPT"], "applies to the resnet"),
        (["--benchmark", "imdb", "--data-dir", "DIR", "--target", "x"], "gender) and bias"),
        (["--benchmark", "imdb", "--data-dir", "DIR", "--test-fraction", "0.3"], "test list"),
        (["--benchmark", "imdb"], "needs --data-dir"),
    ],
)
def test_flags_that_do_not_apply_are_refused(tmp_path, capsys, argv, message):
    from midebias.cli import main

    (tmp_path / "w.pt").write_bytes(b"")
    argv = [
        str(tmp_path / "w.pt") if a == "CKPT" else str(tmp_path) if a == "DIR" else a for a in argv
    ]
    with pytest.raises(SystemExit) as e:
        main(["train", *argv, "--out", str(tmp_path / "r")])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_takes_settings_newer_than_the_run_at_their_defaults(tmp_path):
    """A run folder written before the image-file settings existed can still be continued;
    one whose value differs from the default cannot."""
    import json

    from midebias.training import TrainConfig
    from midebias.training.run import RunDir, RunError

    cfg = TrainConfig(source="demo", epochs=1).resolve()
    old = json.loads(json.dumps(cfg.to_dict()))
    for k in ("target", "bias_columns", "augment", "workers", "image_size", "init_checkpoint"):
        del old[k]
    (tmp_path / "config.json").write_text(json.dumps(old))
    (tmp_path / "run.json").write_text(json.dumps({"status": "running"}))
    assert RunDir.resume_state(tmp_path, cfg) is None  # accepted; no checkpoint yet
    old["augment"] = False
    (tmp_path / "config.json").write_text(json.dumps(old))
    with pytest.raises(RunError, match="augment"):
        RunDir.resume_state(tmp_path, cfg)


@pytest.mark.parametrize("workers", [0, 2])
def test_an_image_that_fails_to_decode_stops_with_its_path(tmp_path, workers):
    _, table = _pair(tmp_path)
    path = tmp_path / "img" / "3.png"
    path.write_bytes(path.read_bytes()[:60])  # the header parses, the pixels are cut off
    with PIL.open(path) as im:
        assert im.size == (8, 8)
    with pytest.raises(DataError) as e:
        list(StreamingSplit(table, (8, 8), workers=workers).batches(8))
    assert str(e.value).startswith(f"{path}: cannot decode the image")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "lable", "--bias", "colour"], "--target lable: no such column in"),
        (["--target", "label", "--bias", "colour", "hue"], "--bias hue: no such column"),
    ],
)
def test_columns_not_in_the_csv_are_usage_errors(tmp_path, capsys, argv, message):
    from midebias.cli import main

    make_folder(tmp_path / "d", n=4)
    base = ["train", "--benchmark", "folder", "--data-dir", str(tmp_path / "d")]
    with pytest.raises(SystemExit) as e:
        main([*base, *argv, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "columns: path, label, colour, age" in err
    (tmp_path / "d" / "labels.csv").unlink()
    with pytest.raises(SystemExit) as e:
        main([*base, *argv, "--out", str(tmp_path / "r")])
    assert e.value.code == 2 and "labels.csv not found" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_unusable_init_checkpoint_leaves_no_run_folder(tmp_path, capsys):
    from midebias.cli import main

    make_folder(tmp_path / "d", n=120)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    argv = ["train", "--benchmark", "folder", "--data-dir", str(tmp_path / "d"), "--no-audit"]
    argv += ["--target", "label", "--bias", "colour", "--init-checkpoint", str(tmp_path / "bad.pt")]
    assert main([*argv, "--workers", "0", "--out", str(tmp_path / "r")]) == 2
    assert "trunk weights missing" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_reads_mi_settings_newer_than_the_run_as_what_the_run_did(tmp_path):
    """An mi run saved before critic_first, no_uphill, delay_steps and gaussian existed
    continues with them off (what it did); not with the present defaults, which turn two of
    them on."""
    import json

    from midebias.training import TrainConfig
    from midebias.training.run import RunDir, RunError

    cfg = TrainConfig(source="demo", method="mi", settings={"preset": "balanced"}, epochs=1)
    cfg = cfg.resolve()
    old = json.loads(json.dumps(cfg.to_dict()))
    for k in ("critic_first", "no_uphill", "delay_steps", "gaussian"):
        del old["settings"][k]
    (tmp_path / "config.json").write_text(json.dumps(old))
    (tmp_path / "run.json").write_text(json.dumps({"status": "running"}))
    assert RunDir.resume_state(tmp_path, cfg) is None  # accepted; no checkpoint yet
    staged = TrainConfig(source="demo", method="mi", epochs=1).resolve()
    with pytest.raises(RunError, match="settings"):
        RunDir.resume_state(tmp_path, staged)
