"""The `midebias` command line: train a method on a benchmark, or run the offline demo."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from midebias import __version__
from midebias.methods.settings import SettingError
from midebias.training.config import LR_SCHEDULES, SELECTABLE


def key_value(text: str) -> tuple[str, str]:
    """argparse type for KEY=VALUE settings (dashes in KEY become underscores)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip().replace("-", "_"), value.strip()


def add_settings_option(add_argument, help: str) -> None:
    """The repeatable ``--set KEY=VALUE`` option (into ``settings``), via a parser's
    ``add_argument`` (or a function with its signature)."""
    add_argument(
        "--set",
        dest="settings",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help=help,
    )


def flag_message(error: SettingError, given: list[tuple[str, str]]) -> str:
    """A settings error told in terms of the --set flag the user typed."""
    from midebias.methods.settings import setting_key

    for key, value in given:
        if setting_key(key) == error.name:
            return f"--set {key}={value}: {error.problem}"
    if error.problem.startswith("no such setting"):
        return f"--set {error.name}: {error.problem}"
    return f"method {error.owner}: {error.name} {error.problem}"


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return v


def check_out(out: str) -> str | None:
    """Why `out` cannot be written (None if it can): checked on the nearest existing
    folder, before any work."""
    path = Path(out).absolute()
    if path.exists() and not path.is_dir():
        return f"--out {out} exists and is not a folder"
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"--out {out}: {probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"--out {out}: {probe} is not writable"
    return None


def check_data_dir(data_dir: str | None, dataset: str) -> str | None:
    """Why the data folder or one of `dataset`'s files in it cannot be read (None if fine)."""
    from midebias.data.sources import unreadable_files

    if data_dir is not None and not Path(data_dir).is_dir():
        if Path(data_dir).exists():
            return f"--data-dir {data_dir} is not a folder"
        return None  # a missing folder: the data error says where else it looked
    bad = unreadable_files(dataset, data_dir)
    if bad:
        return f"--data-dir/MIDEBIAS_DATA_DIR: cannot read {bad[0]} (permission denied)"
    return None


def _check_files(args: argparse.Namespace, parser: argparse.ArgumentParser, dataset: str):
    """Checks of the file system every train run gets before any work: --out and the data
    files (the values themselves are checked by TrainConfig.resolve)."""
    for problem in (check_out(args.out), check_data_dir(args.data_dir, dataset)):
        if problem:
            parser.error(problem)


def _check_columns(csv_path: Path, args: argparse.Namespace) -> str | None:
    """Why --target/--bias do not name columns of the folder's CSV (None if they do):
    its header only, before any work."""
    import csv

    try:
        with csv_path.open(newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
    except FileNotFoundError:
        return f"--data-dir: {csv_path} not found (the CSV of paths and labels; docs/images.md)"
    except (OSError, UnicodeDecodeError) as e:
        return f"--data-dir: cannot read {csv_path} ({e})"
    for flag, col in [("--target", args.target)] + [("--bias", b) for b in args.bias or []]:
        if col not in header:
            return f"{flag} {col}: no such column in {csv_path} (columns: {', '.join(header)})"
    if "path" not in header:
        return f"{csv_path} has no 'path' column (columns: {', '.join(header)})"
    return None


def build_parser(parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser):
    """The command line (`parser_class`: the class of the parser and its subparsers; the
    sweep checks its runs' flags with one whose `error` raises instead of exiting)."""
    from midebias.datasets.registry import BENCHMARKS
    from midebias.methods import METHODS
    from midebias.models import MODELS

    parser = parser_class(
        prog="midebias",
        description="Learn representations that do not encode a known bias attribute "
        "(Ragonesi et al., mutual-information backpropagation) and its baselines.",
    )
    parser.add_argument("--version", action="version", version=f"midebias {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one method on one benchmark; writes a run folder")
    t.add_argument("--benchmark", required=True, choices=list(BENCHMARKS))
    strength = t.add_mutually_exclusive_group()
    strength.add_argument(
        "--bias-var", type=float, help="Colored MNIST colour variance sigma^2 (default 0.020)"
    )
    strength.add_argument(
        "--rho", type=float, help="Biased MNIST colour-label correlation (default 0.99)"
    )
    t.add_argument("--method", default="vanilla", choices=sorted(METHODS))
    t.add_argument(
        "--epochs", type=_positive_int, help="default: 10 (images), ~2,000 updates (tabular)"
    )
    t.add_argument("--batch-size", type=_positive_int, help="default: the benchmark's")
    t.add_argument("--lr", type=_positive_float, help="default: the benchmark's (1e-3)")
    t.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default="constant",
        help="cosine: every optimiser of the method but mi's critic decays from --lr to 0 "
        "along a cosine over the run's steps (default: constant)",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--train-size", type=_positive_int, help="use only N training images")
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--model", choices=sorted(MODELS), help="default: the benchmark's")
    t.add_argument("--bias-code", choices=["paper", "index", "rgb"], help="the attribute c")
    add_settings_option(
        t.add_argument, "a method setting, e.g. --set lambda=1 (repeatable; see: midebias settings)"
    )
    t.add_argument("--source", choices=["mnist", "demo"], default="mnist")
    t.add_argument("--sensitive", choices=["sex", "age"], help="tabular: the attribute s")
    t.add_argument("--include-sensitive", action="store_true", help="tabular: keep s's column in x")
    t.add_argument("--split-seed", type=int, default=0, help="tabular: seed of the data split")
    t.add_argument(
        "--data-dir",
        help="folder with mnist/*.gz (else $MIDEBIAS_DATA_DIR, cache); folder/imdb: the images",
    )
    t.add_argument("--target", help="folder: the CSV column to predict")
    t.add_argument("--bias", nargs="+", metavar="COLUMN", help="folder: the bias column(s)")
    t.add_argument(
        "--bias-bins", type=_positive_int, help="folder: cut continuous bias columns in N quantiles"
    )
    t.add_argument("--train-split", choices=["eb1", "eb2"], help="imdb: train on (default eb1)")
    t.add_argument("--test-fraction", type=float, default=0.2, help="folder without a split column")
    t.add_argument("--image-size", type=_positive_int, help="folder/imdb: resize to N x N")
    t.add_argument("--no-augment", action="store_true", help="folder/imdb: no crop/flip")
    t.add_argument("--workers", type=int, default=2, help="folder/imdb: image-decoding processes")
    t.add_argument("--init-checkpoint", help="resnet*: a weights file to start the trunk from")
    t.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="folder/imdb: leave out missing or unreadable images (counted in config.json)",
    )
    t.add_argument("--device", default="cpu")
    t.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    t.add_argument("--out", required=True, help="run folder to write")
    t.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished run in --out from its last checkpoint (same flags)",
    )
    t.add_argument("--no-audit", action="store_true", help="skip the leakage audit")
    t.add_argument("--eval-every", type=_positive_int, default=1, help="evaluate every N epochs")
    t.add_argument(
        "--select",
        choices=SELECTABLE,
        help="report (and keep) the network of the evaluated epoch with the best value of "
        "this validation metric, instead of the last epoch's",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--label", help="the run's name in tables (config.json; default: --method)")

    st = sub.add_parser("settings", help="list a method's settings, defaults and presets")
    st.add_argument("methods", nargs="*", choices=sorted(METHODS), help="default: all")

    a = sub.add_parser("audit", help="re-run the leakage audit of finished image runs")
    a.add_argument("runs", nargs="+", help="run folders (with config.json and checkpoint.pt)")

    sw = sub.add_parser(
        "sweep",
        help="run a grid of train runs from a spec file (TOML); docs/sweeps.md",
        description="Expand SPEC's grid into `midebias train` runs, one folder each under "
        "OUT; skip finished runs, resume unfinished ones (docs/sweeps.md).",
    )
    sw.add_argument("spec", help="the sweep's TOML file")
    sw.add_argument("--out", help="parent folder of the run folders (default: the spec's out)")
    sw.add_argument(
        "--executor",
        choices=["processes", "slurm", "submitit-local"],
        default="processes",
        help="processes: a pool of processes here (default); slurm: a Slurm job array via "
        "submitit; submitit-local: submitit's local executor (tests the cluster path)",
    )
    sw.add_argument("--jobs", type=_positive_int, default=1, help="runs at once (default 1)")
    sw.add_argument(
        "--batch",
        type=_positive_int,
        default=1,
        metavar="N",
        help="train up to N pending runs that differ only in seed, bias strength and mi's "
        "lambda as one batched computation in this process (vanilla and mi's shared step; "
        "docs/sweeps.md); the rest run as processes",
    )
    sw.add_argument(
        "--threads",
        type=_positive_int,
        help="OMP_NUM_THREADS of each run (default: --cpus if given, else 1)",
    )
    sw.add_argument(
        "--print-commands",
        action="store_true",
        help="print one `midebias train` line per run still to do, and run nothing",
    )
    sw.add_argument("--dry-run", action="store_true", help="list the runs and their state")
    sw.add_argument("--partition", help="slurm: the partition")
    sw.add_argument("--time", type=_positive_int, help="slurm/submitit: minutes per run")
    sw.add_argument("--gpus", type=int, help="slurm: GPUs per run")
    sw.add_argument("--cpus", type=_positive_int, help="slurm: CPUs per run")
    sw.add_argument("--mem-gb", type=_positive_float, help="slurm: memory per run")
    sw.add_argument(
        "--slurm",
        dest="slurm_extra",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="any other sbatch option (repeatable), e.g. --slurm account=abc --slurm qos=high",
    )
    sw.add_argument(
        "--wait", action="store_true", help="slurm: wait for the jobs and report failures"
    )

    r = sub.add_parser(
        "report",
        help="mean +- std tables (and plots) from run folders",
        description="Group finished runs that differ only in their seed; print mean +- "
        "std of each metric per group.",
    )
    r.add_argument("runs", nargs="+", help="run folders, or folders searched for them")
    r.add_argument("--metrics", nargs="+", help="metrics.json keys (default: the benchmark's)")
    r.add_argument("--json", help="write the table as JSON here")
    r.add_argument("--csv", help="write the table as CSV here")
    r.add_argument("--plot", help="write a figure of each metric vs bias strength (matplotlib)")

    d = sub.add_parser("demo", help="offline demo on the embedded MNIST subset")
    d.add_argument("--bias-var", type=float, default=0.020)
    d.add_argument("--epochs", type=_positive_int, default=None, help="default: per method")
    d.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=None)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", help="folder for the demo's run folders (optional)")
    d.add_argument("--overwrite", action="store_true", help="replace earlier demo runs in --out")
    d.add_argument("--no-progress", action="store_true")
    return parser


def _summary(m: dict, spec, out: str) -> str:
    """One line for the terminal from a run's final metrics (`spec`: its benchmark's)."""
    if spec.kind == "tabular":
        parts = [
            f"{m['method']} on {m['benchmark']}/{m['sensitive']} (seed {m['seed']},",
            f"{m['epochs']} epochs): test accuracy {m['test_accuracy']:.3f}",
            f"DP diff {m['test_demographic_parity_difference']:.3f}",
            f"EO diff {m['test_equalized_odds_difference']:.3f}",
        ]
        if "test_sensitive_probe_accuracy" in m:
            parts.append(
                f"s-probe {m['test_sensitive_probe_accuracy']:.3f} "
                f"(majority {m['test_sensitive_majority_rate']:.3f}) MI {m['test_mi_posthoc']:.3f}"
            )
    elif spec.kind == "folder":
        others = [k for k in m if k.endswith("_accuracy") and k not in ("train_accuracy",)]
        parts = [
            f"{m['method']} on {m['benchmark']} (seed {m['seed']}, {m['epochs']} epochs):",
            " ".join(f"{k.removesuffix('_accuracy')} {m[k]:.3f}" for k in sorted(others)),
        ]
        if "bias_probe_accuracy" in m:
            parts.append(f"bias-probe {m['bias_probe_accuracy']:.3f} MI {m['mi_posthoc']:.3f}")
    else:
        setting = spec.bias_setting
        parts = [
            f"{m['method']} on {m['benchmark']} ({setting}={m[setting]}, seed {m['seed']},",
            f"{m['epochs']} epochs): test {m['test_accuracy']:.3f}",
            f"aligned {m['aligned_accuracy']:.3f} val {m['val_accuracy']:.3f}",
        ]
        if "bias_probe_accuracy" in m:
            parts.append(f"bias-probe {m['bias_probe_accuracy']:.3f} MI {m['mi_posthoc']:.3f}")
    parts.append(f"{m['seconds_per_epoch']:.1f} s/epoch -> {out}")
    return " ".join(parts)


def train_config(args: argparse.Namespace, parser: argparse.ArgumentParser, *, device=None):
    """The TrainConfig of parsed `train` flags, every value checked (`parser.error` names
    the flag of a bad one); `device` replaces --device in the check (the sweep checks runs
    bound for a cluster on a machine without its GPUs)."""
    from midebias.datasets.registry import BENCHMARKS
    from midebias.training import TrainConfig

    spec = BENCHMARKS[args.benchmark]
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in --out; --overwrite replaces it: pick one")
    # --bias-var and --rho exclude each other; a tabular benchmark refuses either (resolve).
    strength = args.bias_var if args.bias_var is not None else args.rho
    if spec.kind == "image":
        if spec.bias_setting == "bias_var" and args.rho is not None:
            parser.error("--rho applies to biased-mnist; colored-mnist takes --bias-var")
        if spec.bias_setting == "rho" and args.bias_var is not None:
            parser.error("--bias-var applies to colored-mnist; biased-mnist takes --rho")
    config = TrainConfig(
        benchmark=args.benchmark,
        strength=strength,
        method=args.method,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        train_size=args.train_size,
        val_fraction=args.val_fraction,
        model=args.model,
        bias_code=args.bias_code,
        settings=dict(args.settings),
        source=args.source,
        sensitive=args.sensitive,
        include_sensitive=args.include_sensitive,
        split_seed=args.split_seed,
        data_dir=args.data_dir,
        device=args.device,
        audit=not args.no_audit,
        progress=not args.no_progress,
        eval_every=args.eval_every,
        select=args.select,
        lr_schedule=args.lr_schedule,
        channels_last=args.channels_last,
        target=args.target,
        bias_columns=args.bias,
        bias_bins=args.bias_bins,
        train_split=args.train_split,
        test_fraction=args.test_fraction,
        image_size=args.image_size,
        augment=not args.no_augment,
        workers=args.workers,
        init_checkpoint=args.init_checkpoint,
        skip_bad_images=args.skip_bad_images,
    )
    checked = config if device is None else dataclasses.replace(config, device=device)
    try:
        checked.resolve()  # every value checked before any work is done
    except SettingError as e:
        parser.error(flag_message(e, args.settings))
    except ValueError as e:
        parser.error(str(e))
    return config


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from midebias.datasets.registry import BENCHMARKS
    from midebias.distributed import is_main_process
    from midebias.training import train

    spec = BENCHMARKS[args.benchmark]
    config = train_config(args, parser)
    if spec.kind == "tabular":
        dataset = f"uci-{args.benchmark}"
    elif spec.kind == "folder":
        dataset = ""
        if not Path(args.data_dir).is_dir():
            parser.error(f"--data-dir {args.data_dir}: no such folder")
        if args.benchmark == "folder":
            problem = _check_columns(Path(args.data_dir) / "labels.csv", args)
            if problem:
                parser.error(problem)
    else:
        dataset = "mnist" if args.source == "mnist" else ""
    if args.init_checkpoint is not None and not Path(args.init_checkpoint).is_file():
        parser.error(f"--init-checkpoint {args.init_checkpoint}: no such file")
    _check_files(args, parser, dataset)
    m = train(config, args.out, overwrite=args.overwrite, resume=args.resume, label=args.label)
    if is_main_process():  # under torchrun, rank 0 reports (and wrote the run folder)
        print(_summary(m, spec, args.out))
    return 0


def _print_lines(lines) -> int:
    """Print `lines` to stdout; a reader that stops early (`| head`) is not an error."""
    try:
        for line in lines:
            print(line, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _sweep(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from midebias import sweep

    try:
        grid = sweep.expand(sweep.read_spec(args.spec), source=args.spec)
    except sweep.SpecError as e:
        parser.error(str(e))
    out = args.out or grid.out
    if out is None:
        parser.error(f"{args.spec}: no out folder: give --out or `out = ...` in the spec")
    out = Path(out)
    problem = check_out(str(out))
    if problem:
        parser.error(problem)
    # Runs bound for a cluster (or only listed) are checked with --device cpu: this machine
    # may not have the GPUs they ask for.
    cluster = args.executor != "processes" or args.print_commands or args.dry_run
    try:  # every run's flags, as `midebias train` checks them, before any run starts
        sweep.check(grid, out, device="cpu" if cluster else None)
    except sweep.SpecError as e:
        parser.error(str(e))
    if args.batch > 1 and args.executor != "processes":
        parser.error("--batch applies to --executor processes (runs in this process)")
    if args.executor == "processes" and (args.partition or args.gpus or args.slurm_extra):
        parser.error("--partition, --gpus and --slurm apply to --executor slurm")

    states = sweep.plan(grid, out)
    todo = [
        (run, state)
        for state in ("pending", "unfinished", "stale", "foreign")
        for run in states.get(state, [])
    ]
    todo.sort(key=lambda item: grid.runs.index(item[0]))
    counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(states.items()))
    threads = args.threads or args.cpus or 1
    if args.print_commands:
        return _print_lines(sweep.commands(grid, out))
    print(f"midebias sweep: {len(grid.runs)} runs in {out} ({counts})", file=sys.stderr)
    if args.dry_run:
        return _print_lines(f"{sweep.run_state(out / r.name):10}  {r.name}" for r in grid.runs)
    if not todo:
        print("midebias sweep: nothing to do", file=sys.stderr)
        return 0

    def done(o) -> None:
        what = "finished" + (f" ({o.seconds:.0f} s)" if o.seconds else "")
        what = what if o.ok else f"FAILED: {o.error}"
        print(f"{o.name}: {what}", flush=True)

    if args.executor == "processes":
        outcomes = []
        if args.batch > 1:  # pending runs that batch train together, in this process
            chunks, todo = sweep.batches(todo, out, args.batch)
            outcomes = sweep.run_batches(chunks, out, threads=threads, on_done=done)
        outcomes += sweep.run_processes(todo, out, jobs=args.jobs, threads=threads, on_done=done)
    else:
        params = {
            "timeout_min": args.time,
            "gpus_per_node": args.gpus,
            "cpus_per_task": args.cpus,
            "mem_gb": args.mem_gb,
            "slurm_partition": args.partition,
            "slurm_array_parallelism": args.jobs,
            "slurm_additional_parameters": dict(args.slurm_extra) or None,
        }
        try:
            jobs = sweep.submit(
                todo,
                out,
                cluster="slurm" if args.executor == "slurm" else "local",
                parameters={k: v for k, v in params.items() if v is not None},
                threads=threads,
            )
        except ImportError:
            need = "pip install 'midebias[cluster]'"
            parser.error(f"--executor {args.executor} needs submitit: {need}")
        except sweep.SpecError as e:  # no cluster here
            parser.error(str(e))
        except Exception as e:  # sbatch refused the array: nothing was submitted
            print(f"midebias: error: submitting the runs failed: {e}", file=sys.stderr)
            return 1
        print(
            f"midebias sweep: submitted {len(jobs)} jobs (first: {jobs[0].job_id}); "
            f"their logs: {out / 'submitit'}",
            file=sys.stderr,
        )
        if args.executor == "slurm" and not args.wait:
            return 0
        outcomes = sweep.wait(jobs, [run.name for run, _ in todo])
        for o in outcomes:
            done(o)
    failed = [o for o in outcomes if not o.ok]
    print(
        f"midebias sweep: {len(outcomes) - len(failed)} done, {len(failed)} failed, "
        f"{len(states.get('finished', []))} already finished; tables: midebias report {out}",
        file=sys.stderr,
    )
    for o in failed:
        print(f"midebias: error: run {o.name} failed: {o.error}", file=sys.stderr)
    return 1 if failed else 0


def _report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from midebias import report

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install 'midebias[plot]'")
    for flag, path in (("--json", args.json), ("--csv", args.csv), ("--plot", args.plot)):
        if path and Path(path).is_dir():
            parser.error(f"{flag} {path} is a folder; give a file name")
    try:
        folders = report.find_runs(args.runs)
    except ValueError as e:
        parser.error(str(e))
    runs, unfinished = report.load_runs(folders)
    if not runs:
        parser.error(f"no finished runs in {' '.join(args.runs)}")
    try:
        table = report.summarise_runs(runs, args.metrics)
    except ValueError as e:
        parser.error(str(e))
    print(report.format_summary(table))
    if unfinished:
        print(
            f"({len(unfinished)} unfinished runs left out: {', '.join(unfinished[:5])}"
            + (" ...)" if len(unfinished) > 5 else ")"),
            file=sys.stderr,
        )
    if args.json:
        report.write_json(table, args.json)
    if args.csv:
        report.write_csv(table, args.csv)
    if args.plot:
        report.plot(table, args.plot)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from midebias.data import DataError
    from midebias.models.resnet import CheckpointError
    from midebias.training import RunError, TrainingError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return _train(args, parser)
        if args.command == "settings":
            from midebias.methods import METHODS

            for name in args.methods or METHODS:
                print(f"{name} (--method {name} --set NAME=VALUE):")
                print(METHODS[name].Settings.describe())
            return 0
        if args.command == "audit":
            from midebias.training.reaudit import reaudit_run
            from midebias.training.run import check_auditable

            for run in args.runs:  # every folder checked before any is audited
                check_auditable(run)
            for run in args.runs:
                r = reaudit_run(run)
                print(f"{run}: bias-probe {r['bias_probe_accuracy']:.3f} MI {r['mi_posthoc']:.3f}")
            return 0
        if args.command == "sweep":
            return _sweep(args, parser)
        if args.command == "report":
            return _report(args, parser)
        if args.command == "demo":
            from midebias.demo import run_demo

            return run_demo(args)
    except (RunError, FileExistsError) as e:
        print(f"midebias: error: {e}", file=sys.stderr)
        return 2
    except CheckpointError as e:
        print(f"midebias: error: {e}", file=sys.stderr)
        return 2
    except (DataError, TrainingError) as e:
        print(f"midebias: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("midebias: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
