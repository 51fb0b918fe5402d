"""The documentation stands alone and its results page matches the committed summaries."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _make_docs():
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "benchmarks" / "make_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _repo_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files (every file outside .git otherwise)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        names = [n for n in out.decode().split("\0") if n]
        return [ROOT / n for n in names if (ROOT / n).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache"}
        files = []
        for dirpath, dirnames, filenames in os.walk(ROOT):
            dirnames[:] = [d for d in dirnames if d not in skip]
            files += [Path(dirpath) / f for f in filenames]
        return files


def test_results_page_is_up_to_date(tmp_path):
    make_docs = _make_docs()
    out = tmp_path / "results.md"
    assert make_docs.main(["--out", str(out)]) == 0
    page = ROOT / "docs" / "results.md"
    assert page.read_text() == out.read_text(), (
        "docs/results.md is out of date: run python benchmarks/make_docs.py"
    )


def test_no_reference_outside_the_repository():
    # Built from pieces so that this file does not match itself.
    banned = [b"PROTOCOLS" + b".md", b"../" + b"shared"]
    hits = []
    for f in _repo_files():
        try:
            data = f.read_bytes()
        except OSError:
            continue
        hits += [f"{f.relative_to(ROOT)}: {b.decode()}" for b in banned if b in data]
    assert not hits, "files point outside the repository:\n" + "\n".join(hits)


def test_docs_links_resolve():
    """Relative links in README.md and docs/*.md point at files that exist."""
    import re

    missing = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not missing, "broken links:\n" + "\n".join(missing)
