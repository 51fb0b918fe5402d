"""Grids of runs: a hand-written spec (TOML) expanded into independent `midebias train` runs.

A spec has a `[base]` table (flags of `midebias train` shared by every run, by their long
names with underscores, plus `[base.set]` for method settings) and a `[grid]` table of
lists crossed with each other (`[grid.set]` for settings). Each run is exactly the command
`midebias train FLAGS --out OUT/NAME` (`commands` prints them), so a sweep can run here
with a bounded pool of processes, go to Slurm through submitit, or become the lines of any
job array. A run folder that finished is skipped; one left unfinished is continued with
`--resume`. docs/sweeps.md describes the format and the folder names.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML through tomli (a dependency there)
    import tomli as tomllib


class SpecError(ValueError):
    """The spec cannot be run as written; the message names the file and the key."""


#: Spec top-level keys.
TOP_KEYS = ("out", "name", "label", "base", "grid")
#: `midebias train` flags the sweep sets itself (the run folder, resuming, the log).
OWN_FLAGS = {"out", "overwrite", "resume", "no_progress", "label", "help"}
#: What a folder name does not keep from a value (replaced by '-').
_UNSAFE = re.compile(r"[^A-Za-z0-9.+=-]+")


class _Refusing(argparse.ArgumentParser):
    """A parser whose errors raise (so a spec's bad value is reported, not exited on)."""

    def error(self, message: str):  # type: ignore[override]
        raise SpecError(message)


def _train_flags() -> dict[str, argparse.Action]:
    """The `midebias train` options by spec key (long flag, dashes as underscores)."""
    from midebias.cli import build_parser

    parser = build_parser()
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        "train"
    ]
    flags = {}
    for action in train._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs:
            key = longs[0][2:].replace("-", "_")
            if key not in OWN_FLAGS and key != "set":
                flags[key] = action
    return flags


def value_text(v: Any) -> str:
    """A spec value as a flag's text and in folder names: floats in their shortest form
    that reads back the same (0.02, 1e-05; 1.0 as 1), booleans as true/false."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        short = f"{v:g}"
        return short if float(short) == v else repr(v)
    return str(v)


def safe(text: str) -> str:
    """`text` for a folder name: ':' (method:preset) and anything else outside
    A-Z a-z 0-9 . + = - become '-'."""
    return _UNSAFE.sub("-", text)


@dataclass
class Run:
    """One run of a sweep: its folder name, its table label and its `train` flags."""

    name: str
    label: str
    flags: list[str]
    values: dict[str, Any] = field(default_factory=dict)

    def command(self, out: Path, state: str = "pending") -> list[str]:
        """The `midebias train` arguments of this run in `out`, for its folder's state
        (see `run_state`): --resume continues an unfinished run, --overwrite replaces a
        run killed before it wrote its config."""
        extra = {"unfinished": ["--resume"], "stale": ["--overwrite"]}.get(state, [])
        own = self.label == str(self.values.get("method", "vanilla")).partition(":")[0]
        label = [] if own else ["--label", self.label]
        out_flag = ["--out", str(out / self.name)]
        return ["train", *self.flags, *label, "--no-progress", *out_flag, *extra]


@dataclass
class Sweep:
    """An expanded spec: its runs (in grid order) and the default parent folder."""

    runs: list[Run]
    out: Path | None
    source: str = "spec"


def read_spec(path: str | Path) -> dict:
    """The TOML spec at `path` as a dict; SpecError if it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read it ({e})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML ({e})") from None


def _axis_items(table: dict, where: str) -> list[tuple[str, Any]]:
    """(key, value) of a [base] or [grid] table with its `set` subtable flattened to
    'set.KEY' keys, in the order written."""
    if not isinstance(table, dict):
        raise SpecError(f"{where} must be a table")
    items = []
    for key, value in table.items():
        if key == "set":
            if not isinstance(value, dict):
                raise SpecError(f"{where}.set must be a table of method settings")
            items += [(f"set.{k}", v) for k, v in value.items()]
        else:
            items.append((key, value))
    return items


def _check_scalar(where: str, value: Any) -> None:
    if not isinstance(value, (str, int, float, bool)):
        raise SpecError(f"{where} = {value!r}: expected a string, number or true/false")


def expand(spec: dict, source: str = "spec") -> Sweep:
    """The runs of a spec dict (as read by `read_spec`), their names checked unique.
    SpecError (naming `source` and the key) for anything the format does not allow; the
    flag values themselves are checked by `check`."""
    unknown = sorted(set(spec) - set(TOP_KEYS))
    if unknown:
        raise SpecError(f"{source}: unknown key {unknown[0]!r} (a spec has {', '.join(TOP_KEYS)})")
    flags = _train_flags()
    base = _axis_items(spec.get("base", {}), f"{source}: [base]")
    grid = _axis_items(spec.get("grid", {}), f"{source}: [grid]")
    for table, items in (("base", base), ("grid", grid)):
        for key, value in items:
            where = f"{source}: {table}.{key}"
            if key in OWN_FLAGS:
                raise SpecError(f"{where}: set by the sweep itself (runs go to OUT/NAME)")
            if not key.startswith("set.") and key not in flags and key != "strength":
                raise SpecError(
                    f"{where}: unknown field (fields: the long flags of `midebias train` with "
                    "underscores, e.g. bias_var, train_size; strength; settings under "
                    f"[{table}.set])"
                )
            if table == "base":
                if isinstance(value, list):
                    raise SpecError(f"{where} is a list: put it under [grid] to cross it")
                _check_scalar(where, value)
            else:
                if not isinstance(value, list):
                    raise SpecError(f"{where} must be a list of values (one value: [base])")
                if not value:
                    raise SpecError(f"{where} is an empty list: a grid axis needs a value")
                for v in value:
                    _check_scalar(where, v)
                if len(set(map(value_text, value))) != len(value):
                    raise SpecError(f"{where} lists a value twice")
    both = sorted({k for k, _ in base} & {k for k, _ in grid})
    if both:
        raise SpecError(f"{source}: {both[0]} is in both [base] and [grid]; keep one")
    for key in ("name", "label", "out"):
        if key in spec and not isinstance(spec[key], str):
            raise SpecError(f"{source}: {key} must be a string")

    axes = [k for k, _ in grid]
    runs = []
    for combo in itertools.product(*(v for _, v in grid)):
        values = dict(base) | dict(zip(axes, combo, strict=True))
        runs.append(_make_run(values, axes, spec, flags, source))
    seen: dict[str, Run] = {}
    for run in runs:
        if run.name in seen:
            raise SpecError(
                f"{source}: two runs get the folder name {run.name!r} "
                f"({_show(seen[run.name].values, axes)} and {_show(run.values, axes)}); "
                "change `name` so that it tells them apart"
            )
        seen[run.name] = run
    out = Path(spec["out"]) if "out" in spec else None
    return Sweep(runs=runs, out=out, source=source)


def _show(values: dict, axes: list[str]) -> str:
    return ", ".join(f"{k}={value_text(values[k])}" for k in axes)


def _make_run(values: dict, axes: list[str], spec: dict, flags: dict, source: str) -> Run:
    # Fields for `name` and `label` templates: every value, settings by their own name.
    fields = {k.removeprefix("set."): safe(value_text(v)) for k, v in values.items()}
    if "name" in spec:
        try:
            name = spec["name"].format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise SpecError(f"{source}: name {spec['name']!r}: no field {e}") from None
    else:
        parts = [f"{k.removeprefix('set.')}={fields[k.removeprefix('set.')]}" for k in axes]
        name = "_".join(parts) or "run"
    if (
        not name
        or name.startswith(".")
        or "/" in name
        or safe(name.replace("_", "")) != (name.replace("_", ""))
    ):
        raise SpecError(f"{source}: folder name {name!r} is not a plain file name")
    raw = {k.removeprefix("set."): value_text(v) for k, v in values.items()}
    try:
        label = spec.get("label", "{method}").format(**{"method": "vanilla", **raw})
    except (KeyError, IndexError, ValueError) as e:
        raise SpecError(f"{source}: label {spec['label']!r}: no field {e}") from None

    argv: list[str] = []
    settings: list[str] = []
    for key, value in values.items():
        if key.startswith("set."):
            settings += ["--set", f"{key[4:]}={value_text(value)}"]
            continue
        if key == "method":
            method, _, preset = str(value).partition(":")
            argv += ["--method", method]
            if preset:
                settings = ["--set", f"preset={preset}", *settings]
            continue
        if key == "strength":
            key = _strength_flag(values, source)
        action = flags[key]
        flag = next(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._StoreTrueAction):
            if not isinstance(value, bool):
                raise SpecError(f"{source}: {key} = {value!r}: expected true or false")
            if value:
                argv.append(flag)
        else:
            argv += [flag, value_text(value)]
    run_values = dict(values)
    if "method" in run_values:
        run_values["method"] = str(run_values["method"])
    return Run(name=name, label=label, flags=argv + settings, values=run_values)


def _strength_flag(values: dict, source: str) -> str:
    """`strength` is the benchmark's own bias setting: bias_var or rho."""
    from midebias.datasets.registry import BENCHMARKS

    bench = values.get("benchmark")
    spec = BENCHMARKS.get(bench) if isinstance(bench, str) else None
    if spec is None:
        return "bias_var"  # the check then reports the missing or unknown benchmark
    if spec.kind != "image":
        raise SpecError(f"{source}: strength: benchmark {bench} has no bias strength")
    return spec.bias_setting


def check(sweep: Sweep, out: Path, *, device: str | None = None) -> None:
    """Check every run's flags as `midebias train` would (SpecError naming the run and the
    flag), before any run starts. `device` replaces --device in the check (runs bound for
    a cluster are checked on a machine without its GPUs)."""
    from midebias.cli import build_parser, train_config

    parser = build_parser(_Refusing)
    for run in sweep.runs:
        try:
            args = parser.parse_args(run.command(out))
            train_config(args, parser, device=device)
        except SpecError as e:
            raise SpecError(f"{sweep.source}: run {run.name}: {e}") from None


# ------------------------------------------------------------------------- run folders


def run_state(folder: Path) -> str:
    """'pending' (no run yet), 'finished', 'unfinished' (continue with --resume), 'stale'
    (killed before its config was written: start over with --overwrite), or 'foreign'
    (files that are not a run; `midebias train` refuses them)."""
    from midebias.training.run import is_run, run_status

    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return "pending"
    status = run_status(folder)
    if status == "finished":
        return "finished"
    if not is_run(folder):
        return "foreign"
    return "unfinished" if (folder / "config.json").is_file() else "stale"


def plan(sweep: Sweep, out: Path) -> dict[str, list[Run]]:
    """The runs by state (see `run_state`)."""
    states: dict[str, list[Run]] = {}
    for run in sweep.runs:
        states.setdefault(run_state(out / run.name), []).append(run)
    return states


def commands(sweep: Sweep, out: Path, program: str = "midebias") -> list[str]:
    """One shell line per run still to do (pending, unfinished with --resume)."""
    lines = []
    for run in sweep.runs:
        state = run_state(out / run.name)
        if state != "finished":
            lines.append(shlex.join([program, *run.command(out, state)]))
    return lines


# ----------------------------------------------------------------------------- running


@dataclass
class Outcome:
    name: str
    ok: bool
    error: str = ""
    seconds: float = 0.0


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def run_processes(
    todo: Sequence[tuple[Run, str]],
    out: Path,
    *,
    jobs: int = 1,
    threads: int | None = 1,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run each (run, state) as its own `python -m midebias.cli train` process, at most
    `jobs` at once, each with OMP_NUM_THREADS=`threads` (None: the environment's); the
    output of each goes to OUT/logs/NAME.log."""
    if not todo:
        return []
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    lock = threading.Lock()
    live: set[subprocess.Popen] = set()
    stopping = threading.Event()

    def one(item: tuple[Run, str]) -> Outcome:
        run, state = item
        if stopping.is_set():
            return Outcome(run.name, False, "not started: the sweep was stopped")
        t0 = time.perf_counter()
        log = logs / f"{run.name}.log"
        with open(log, "a") as f:  # a resumed run adds to its log
            with lock:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "midebias.cli", *run.command(out, state)],
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
                live.add(proc)
            rc = proc.wait()
            with lock:
                live.discard(proc)
        outcome = Outcome(run.name, rc == 0, seconds=time.perf_counter() - t0)
        if rc != 0:
            why = _last_line(log.read_text()) if rc > 0 else f"killed by signal {-rc}"
            outcome.error = f"exit {rc}: {why} (log: {log})"
        if on_done is not None:
            with lock:
                on_done(outcome)
        return outcome

    def stop(signum, frame):  # SIGTERM (a time limit, scancel): stop like Ctrl-C
        raise SystemExit(128 + signum)

    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, stop) if main else None
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        return list(pool.map(one, todo))
    except BaseException:  # stopped: end the runs in progress (they stay resumable)
        stopping.set()
        with lock:
            for proc in live:
                proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if main:
            signal.signal(signal.SIGTERM, old)


def batches(
    todo: Sequence[tuple[Run, str]], out: Path, size: int
) -> tuple[list[list[tuple[Run, Any]]], list[tuple[Run, str]]]:
    """`sweep --batch`: the pending runs that can train as one batched computation
    (midebias.training.batched: the same config but for seed, strength and mi's lambda_),
    in chunks of at most `size` (run, resolved config) pairs, and the (run, state) pairs
    left to run one by one (continued runs, methods and settings that do not batch)."""
    from midebias.cli import build_parser, train_config
    from midebias.training.batched import check_batchable, shared_settings

    parser = build_parser(_Refusing)
    groups: dict[str, list[tuple[Run, Any]]] = {}
    single: list[tuple[Run, str]] = []
    for run, state in todo:
        if state != "pending":
            single.append((run, state))
            continue
        args = parser.parse_args(run.command(out))
        cfg = train_config(args, parser).resolve()
        try:
            check_batchable([cfg])
        except ValueError:
            single.append((run, state))
            continue
        key = repr(sorted(shared_settings(cfg).items()))
        groups.setdefault(key, []).append((run, cfg))
    chunks = [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]
    return chunks, single


def run_batches(
    chunks: Sequence[Sequence[tuple[Run, Any]]],
    out: Path,
    *,
    threads: int | None = 1,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Train each chunk of `batches` in this process (`train_batched`), one after the
    other; a chunk that fails fails each of its runs (their folders stay resumable)."""
    import torch

    from midebias.training.batched import train_batched

    if threads is not None:
        torch.set_num_threads(threads)
    outcomes = []
    for chunk in chunks:
        t0 = time.perf_counter()
        runs = [run for run, _ in chunk]
        labels = [None if r.command(out).count("--label") == 0 else r.label for r in runs]
        try:
            train_batched([cfg for _, cfg in chunk], [out / r.name for r in runs], labels=labels)
            error = ""
        except Exception as e:  # reported per run, as a failed process would be
            error = f"batch of {len(runs)}: {type(e).__name__}: {_last_line(str(e))}"
        seconds = time.perf_counter() - t0
        for r in runs:
            outcomes.append(Outcome(r.name, not error, error, seconds))
            if on_done is not None:
                on_done(outcomes[-1])
    return outcomes


def run_job(argv: list[str], threads: int | None = None) -> str:
    """A cluster job: one `midebias train` process; raises with its error if it fails."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    p = subprocess.run(
        [sys.executable, "-m", "midebias.cli", *argv], env=env, capture_output=True, text=True
    )
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {_last_line(p.stderr or p.stdout)}")
    return _last_line(p.stdout)


def submit(
    todo: Sequence[tuple[Run, str]],
    out: Path,
    *,
    cluster: str,
    parameters: dict[str, Any],
    threads: int | None = None,
):
    """Submit each (run, state) through submitit (`cluster`: 'slurm' or 'local') as one job
    array; returns the jobs. submitit's own files go to OUT/submitit."""
    import submitit

    try:  # not on a Slurm cluster, or parameters submitit refuses: nothing is submitted
        executor = submitit.AutoExecutor(folder=out / "submitit", cluster=cluster)
        executor.update_parameters(name="midebias-sweep", **parameters)
    except (RuntimeError, ValueError, NameError) as e:
        raise SpecError(f"--executor {cluster}: {_last_line(str(e))}") from None
    argvs = [run.command(out, state) for run, state in todo]
    return executor.map_array(run_job, argvs, [threads] * len(argvs))


def wait(jobs, names: Sequence[str]) -> list[Outcome]:
    """Wait for submitit jobs; one Outcome each."""
    outcomes = []
    for job, name in zip(jobs, names, strict=True):
        try:
            job.result()
            outcomes.append(Outcome(name, True))
        except Exception as e:  # submitit wraps the job's error; keep its last line
            outcomes.append(Outcome(name, False, f"job {job.job_id}: {_last_line(str(e))}"))
    return outcomes
