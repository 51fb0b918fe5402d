"""A run is a folder: config.json, metrics.jsonl (one line per epoch), metrics.json, checkpoint."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become null so files stay valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


#: The run's state: {"status": "running"} until the last file is written, then "finished".
STATUS_FILE = "run.json"


def _atomic_write(path: Path, write) -> None:
    """Write through `write(file)` into a temporary file beside `path`, then rename it
    over `path` (os.replace is atomic within one folder)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def run_status(path: str | Path) -> str:
    """'finished', 'running' (or killed while running), or 'unknown' (no run.json: a run
    written before run.json existed is 'finished' if it has metrics.json)."""
    path = Path(path)
    try:
        return str(json.loads((path / STATUS_FILE).read_text())["status"])
    except (OSError, ValueError, KeyError, TypeError):
        return "finished" if (path / "metrics.json").is_file() else "unknown"


#: The files a run folder holds (anything else means the folder is not only a run).
RUN_FILES = frozenset(
    {"config.json", "metrics.jsonl", "metrics.json", "checkpoint.pt", STATUS_FILE}
)


def is_run(path: str | Path) -> bool:
    path = Path(path)
    return (path / STATUS_FILE).is_file() or (path / "metrics.jsonl").is_file()


def describe_run(path: str | Path) -> str:
    """'a finished mi run on colored-mnist (seed 0)', for messages."""
    path = Path(path)
    try:
        cfg = json.loads((path / "config.json").read_text())
        what = f" {cfg.get('label') or cfg.get('method', '')} run on {cfg['benchmark']}"
        what += f" (seed {cfg.get('seed', '?')})"
    except (OSError, ValueError, KeyError, TypeError):
        what = " run"
    status = run_status(path)
    return f"a{'n' if status == 'unknown' else ''} {status}{what}"


class RunError(Exception):
    """A run folder cannot be used as asked (incomplete, not a run, unsafe checkpoint)."""


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint with ``weights_only=True``: tensors, numbers, strings and plain
    containers only. A pickle that would build any other object (and so could run code)
    is refused before anything in it runs."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunError(f"{path} does not exist") from None
    except Exception as e:  # pickle.UnpicklingError, RuntimeError for bad archives, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(
            f"{path} is not a safe midebias checkpoint (refused to load it: {first[:200]})"
        ) from None
    if not isinstance(state, dict):
        raise RunError(f"{path} is not a midebias checkpoint (expected a dict)")
    return state


class RunDir:
    """Writes one run's files. Refuses to mix two runs in one folder."""

    def __init__(self, path: str | Path, overwrite: bool = False, *, _reopen: bool = False):
        self.target = Path(path)
        self.path = self.target  # where files go now: a staging sibling until `commit`
        self._created = False
        if not _reopen:
            self.check_free(self.target, overwrite)
            if self.target.exists() and any(self.target.iterdir()):
                # Replace the old run only once the new one is set up (`commit`): until
                # then the new run lives in a hidden sibling folder.
                self.path = self.target.with_name(f".{self.target.name}.new-{os.getpid()}")
                shutil.rmtree(self.path, ignore_errors=True)
            self._created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            self.write_json(STATUS_FILE, {"status": "running"})
        (self.path / "metrics.jsonl").write_text("")

    def commit(self) -> str | None:
        """Swap a staged run into place (the old run is deleted only now); returns what was
        replaced, or None. Call once the run is set up."""
        if self.path == self.target:
            return None
        replaced = describe_run(self.target)
        old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(self.target, old)
        os.replace(self.path, self.target)
        shutil.rmtree(old, ignore_errors=True)
        self.path = self.target
        print(f"midebias: replaced {replaced} in {self.target}", file=sys.stderr)
        return replaced

    def abandon(self) -> None:
        """Setup failed: remove what this RunDir created (a staged run or a new folder);
        an old run in the target folder is kept as it was."""
        if self.path != self.target or self._created:
            shutil.rmtree(self.path, ignore_errors=True)
        else:  # a folder that existed empty: take back only our files
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)

    @classmethod
    def reopen(cls, path: str | Path) -> RunDir:
        """The unfinished run in `path`, to continue (its log is rewritten by the caller)."""
        return cls(path, _reopen=True)

    @staticmethod
    def resume_state(path: str | Path, cfg) -> dict | None:
        """The last checkpoint of the unfinished run in `path` (None if it stopped before
        its first checkpoint), after checking that `cfg` (resolved) is that run's config.
        Raises RunError saying why the run cannot be continued."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise RunError(f"--resume: {path} holds no run to continue (no config.json)")
        if run_status(path) == "finished":
            raise RunError(f"--resume: the run in {path} already finished; nothing to continue")
        saved_cfg = json.loads((path / "config.json").read_text())
        new = json.loads(json.dumps(_clean(cfg.to_dict())))
        ignore = {"progress", "workers"}  # do not change what is computed
        # A setting newer than the run's config.json had its default then.
        defaults = {
            f.name: f.default
            for f in dataclasses.fields(cfg)
            if f.default is not dataclasses.MISSING
        }
        if isinstance(saved_cfg.get("settings"), dict):
            # ... and a method setting newer than it the value that did what the run did
            # (cfg is resolved: its settings are the method's Settings instance).
            saved_cfg["settings"] = type(cfg.settings).completed(saved_cfg["settings"])
        diff = sorted(
            k for k in new if k not in ignore and saved_cfg.get(k, defaults.get(k)) != new[k]
        )
        if diff:
            shown = ", ".join(f"{k} (run: {saved_cfg.get(k)!r}, now: {new[k]!r})" for k in diff)
            raise RunError(
                f"--resume: the flags differ from the run in {path}: {shown}; "
                "pass the run's own flags to continue it"
            )
        if not (path / "checkpoint.pt").exists():
            return None
        state = load_checkpoint(path / "checkpoint.pt")
        if "method" not in state or "rng" not in state:
            raise RunError(f"--resume: {path / 'checkpoint.pt'} holds no training state")
        return state

    @staticmethod
    def check_free(path: str | Path, overwrite: bool = False) -> None:
        """Raise FileExistsError unless `path` is new, an empty folder, or (with overwrite)
        a folder holding one run and nothing else."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder; choose another --out")
        if not path.exists():
            return
        names = sorted(p.name for p in path.iterdir())
        if not names:
            return
        others = [n for n in names if n not in RUN_FILES]
        if not is_run(path) or others:
            shown = ", ".join((others or names)[:5]) + (" ..." if len(others or names) > 5 else "")
            raise FileExistsError(
                f"{path} holds files that are not a midebias run ({shown}); "
                "choose a new or empty --out"
            )
        if not overwrite:
            raise FileExistsError(
                f"{path} already holds a run ({describe_run(path)}); choose another --out "
                "or pass --overwrite"
            )

    def write_json(self, name: str, data: dict) -> None:
        text = json.dumps(_clean(data), indent=2, sort_keys=True) + "\n"
        _atomic_write(self.path / name, lambda f: f.write(text.encode()))

    def log_epoch(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(_clean(record), sort_keys=True) + "\n")

    def rewrite_log(self, records: list[dict]) -> None:
        """metrics.jsonl holding exactly `records` (written atomically)."""
        text = "".join(json.dumps(_clean(r), sort_keys=True) + "\n" for r in records)
        _atomic_write(self.path / "metrics.jsonl", lambda f: f.write(text.encode()))

    def save_checkpoint(self, state: dict) -> None:
        """checkpoint.pt, replaced atomically: a crash leaves the old one or the new one."""
        _atomic_write(self.path / "checkpoint.pt", lambda f: torch.save(state, f))

    def finish(self) -> None:
        """Mark the run complete (the last file written)."""
        self.write_json(STATUS_FILE, {"status": "finished"})


def check_auditable(path: str | Path) -> None:
    """Raise RunError unless `path` holds a finished image run with its checkpoint."""
    from midebias.datasets.registry import FOLDER_BENCHMARKS, IMAGE_BENCHMARKS

    path = Path(path)
    if not (path / "config.json").is_file():
        raise RunError(f"{path} holds no run (no config.json)")
    try:
        cfg = json.loads((path / "config.json").read_text())
    except ValueError:
        raise RunError(f"{path}/config.json is not valid JSON") from None
    if not isinstance(cfg, dict) or cfg.get("benchmark") not in {
        **IMAGE_BENCHMARKS,
        **FOLDER_BENCHMARKS,
    }:
        bench = cfg.get("benchmark") if isinstance(cfg, dict) else None
        raise RunError(f"{path} is a {bench or 'non-image'} run; audit re-checks image runs only")
    status = run_status(path)
    if status != "finished":
        raise RunError(
            f"{path} holds an unfinished run ({status}); continue it with "
            "`midebias train --resume` (same flags) before auditing it"
        )
    if not (path / "checkpoint.pt").is_file():
        raise RunError(f"{path} holds no checkpoint.pt")


def read_run(path: str | Path) -> dict:
    """config, per-epoch history and final metrics of a run folder."""
    path = Path(path)
    history = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    return {
        "config": json.loads((path / "config.json").read_text()),
        "history": history,
        "metrics": json.loads((path / "metrics.json").read_text()),
    }
